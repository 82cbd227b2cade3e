"""Compare SDAKD with its baselines and ablations at an equal iteration budget, on the demo's data and the
real Real-ESRGAN x4plus teacher (offline), and write one table.

    python -m sdakd_basicsr.tools.compare --methods sdakd,teacher_d_only,student_d_only,no_fmd --iters 10,60,20,20
    python -m sdakd_basicsr.tools.compare --methods all --seeds 0,1 --out experiments/sdakd_compare

Each method is a transform of the demo's stage files (sdakd_basicsr/recipes/ablations.py); stages a method
does not change are shared with SDAKD's own runs, and a stage a method drops gives its iterations to the
method's next stage, so every method trains the same number of iterations. Writes ``compare.md`` and
``compare.csv`` (held-out PSNR/SSIM against GT, PSNR against the teacher, NIQE; mean and spread over seeds)
and ``logits.png`` (mean discriminator logits of each method's last stage: with the teacher discriminator
alone, its fake logits run away — the capacity mismatch SDAKD addresses).
"""
import argparse
import copy
import csv
import glob
import os
import time
from os import path as osp
from typing import Dict, List, Optional

import numpy as np
import yaml

import sdakd_basicsr  # noqa: F401  (compat fixes + registration)
from sdakd_basicsr.archs.generator_call import REALESRGAN_X4PLUS
from sdakd_basicsr.checkpoints import load_generator
from sdakd_basicsr.metrics import perceptual as pm
from sdakd_basicsr.metrics import quality, reporting
from sdakd_basicsr.recipes import demo
from sdakd_basicsr.recipes.ablations import METHODS, apply_method, rename_runs, stage_iterations


def _seeded(stages: Dict[int, dict], seed: int) -> Dict[int, dict]:
    """Own experiment names per seed (cmp_s<seed>_...), paths rewired, manual_seed set."""
    out = copy.deepcopy(stages)
    rename_runs(out, lambda name: f'cmp_s{seed}_{name}')
    for opt in out.values():
        opt['manual_seed'] = seed * 10 + opt.get('manual_seed', 0)
    return out


def plan(methods: List[str], seed: int, budget: Dict[int, int]) -> List[tuple]:
    """[(method, stage, opt, iterations)] in a runnable order; SDAKD's own stages come first."""
    stages = _seeded(demo.load_stages(), seed)
    sdakd_stages = {s: stages[s] for s in (1, 2, 3)}
    runs, needed = [], set()
    per_method = {}
    for method in methods:
        own = apply_method(method, sdakd_stages)
        chain = sorted(METHODS[method](copy.deepcopy(sdakd_stages)))  # the stages this method runs at all
        shared = [s for s in chain if s not in own]  # ... of which SDAKD's own runs serve
        needed.update(shared)
        per_method[method] = (own, shared)
    uses_d_teacher = any('network_d_teacher' in opt for own, _ in per_method.values() for opt in own.values())
    if uses_d_teacher:
        runs.append(('stage0', 0, stages[0], budget[0]))
    for s in sorted(needed | (set(per_method['sdakd'][0]) if 'sdakd' in per_method else set())):
        runs.append(('sdakd', s, stages[s], budget[s]))
    for method, (own, shared) in per_method.items():
        if method == 'sdakd':
            continue
        iters = stage_iterations(sorted(shared + list(own)), {s: budget[s] for s in (1, 2, 3)})
        runs += [(method, s, opt, iters[s]) for s, opt in sorted(own.items())]
    return runs


def final_checkpoint(method: str, seed: int) -> str:
    stages = _seeded(demo.load_stages(), seed)
    own = apply_method(method, {s: stages[s] for s in (1, 2, 3)})
    return osp.join('experiments', own[max(own)]['name'], 'models', 'net_g_latest.pth')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--methods', default='sdakd,teacher_d_only,student_d_only,no_fmd',
                        help=f'comma-separated, or all: {",".join(METHODS)}')
    parser.add_argument('--iters', default='10,60,20,20', help='SDAKD iterations of stages 0,1,2,3 (the budget)')
    parser.add_argument('--seeds', default='0')
    parser.add_argument('--out', default=osp.join('experiments', 'sdakd_compare'))
    parser.add_argument('--report-only', action='store_true')
    parser.add_argument('--lpips-weights', metavar='FILE',
                        help='AlexNet weights for LPIPS columns (default: searched, as in evaluate)')
    args = parser.parse_args(argv)
    methods = list(METHODS) if args.methods == 'all' else args.methods.split(',')
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f'unknown method(s) {unknown}; choose from {sorted(METHODS)}')
    budget = dict(enumerate(int(v) for v in args.iters.split(',')))
    seeds = [int(s) for s in args.seeds.split(',')]
    start = time.time()
    os.makedirs(osp.join(args.out, 'options'), exist_ok=True)
    if not args.report_only:
        demo.convert_teacher()
        demo.prepare_data()
        for seed in seeds:
            runs = plan(methods, seed, budget)
            demo.say(f'seed {seed}: {len(runs)} runs: ' + ', '.join(f'{m}/stage{s} ({n} it)' for m, s, _, n in runs))
            for method, stage, opt, n in runs:
                path = osp.join(args.out, 'options', f'{opt["name"]}.yml')
                with open(path, 'w', encoding='utf-8') as f:
                    yaml.safe_dump(opt, f, sort_keys=False)
                demo.say(f'{method} stage {stage}: {n} iterations')
                demo.run_option_file(path, n, [], osp.join('experiments', opt['name']))

    demo.say('evaluating on the held-out images')
    spec = demo.student_spec()
    generators = {'bicubic': quality.bicubic(4),
                  'teacher': quality.network(load_generator(REALESRGAN_X4PLUS, demo.TEACHER_FILE))}
    for seed in seeds:
        for method in methods:
            generators[f'{method}|{seed}'] = quality.network(load_generator(spec, final_checkpoint(method, seed)))
    pairs = demo.heldout_pairs()
    results = quality.evaluate(generators, pairs, log=demo.say)
    outputs = results.pop('_outputs')
    metrics = ['psnr', 'ssim', 'psnr_teacher', 'psnr_teacher_y', 'psnr_teacher_cbcr', 'hf_ratio', 'niqe']
    header = ['method', 'PSNR vs GT', 'SSIM vs GT', 'PSNR vs teacher', 'PSNR-Y vs teacher', 'chroma PSNR vs teacher',
              'HF energy / teacher', 'NIQE']
    notes: List[str] = []
    lpips = pm.build_metric(pm.LPIPSMetric, args.lpips_weights, notes.append)
    if lpips is not None:  # "keeps the teacher's look": LPIPS against the teacher's output
        pm.add_lpips(results, outputs, pairs, lpips, 'teacher')
        metrics += ['lpips', 'lpips_teacher']
        header += ['LPIPS vs GT', 'LPIPS vs teacher']
    rows, csv_rows = [], []
    for label in ['bicubic', 'teacher'] + methods:
        keys = [label] if label in ('bicubic', 'teacher') else [f'{label}|{s}' for s in seeds]
        values = {m: [results[k][m] for k in keys] for m in metrics}
        cells = []
        for m in metrics:
            v = np.array(values[m], dtype=float)
            mean = float(v.mean())
            cells.append(mean if len(v) == 1 or not np.isfinite(mean) else f'{mean:.2f} ± {v.std():.2f}')
        rows.append([label] + cells)
        csv_rows.append({'method': label, **{m: float(np.mean(values[m])) for m in metrics}, 'seeds': len(keys)})
    table = reporting.markdown_table(header, rows, fmt={2: '.4f', 6: '.3f', 8: '.4f', 9: '.4f'})
    _plot_logits(methods, seeds[0], osp.join(args.out, 'logits.png'))
    minutes = (time.time() - start) / 60
    text = (f'# SDAKD comparison (demo data, real x4plus teacher, width 1/4)\n\nBudget (stages 0-3 of SDAKD): '
            f'{args.iters}; seeds: {args.seeds}; every method trains the same number of iterations. Held-out: '
            f'{", ".join(p[0] for p in pairs)}.\n\n{table}\n\n`logits.png`: discriminator logits of each '
            f'method\'s last stage. Took {minutes:.1f} min.\n' + ''.join(f'\n- {n}' for n in notes) + '\n')
    with open(osp.join(args.out, 'compare.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    with open(osp.join(args.out, 'compare.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
        writer.writeheader()
        writer.writerows(csv_rows)
    print(table, flush=True)
    demo.say(f'wrote {osp.join(args.out, "compare.md")}, compare.csv, logits.png ({minutes:.1f} min)')
    return 0


def _plot_logits(methods: List[str], seed: int, path: str) -> None:
    import matplotlib  # lazy: plots only (+0.7 s import)
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use, as above
    stages = _seeded(demo.load_stages(), seed)
    fig, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 3.2), squeeze=False)
    for ax, method in zip(axes[0], methods):
        own = apply_method(method, {s: stages[s] for s in (1, 2, 3)})
        logs = sorted(glob.glob(osp.join('experiments', own[max(own)]['name'], 'train_*.log')))
        series = reporting.parse_train_log(logs[-1]) if logs else {}
        for key in sorted(k for k in series if k.startswith('out_')):
            its, values = zip(*series[key])
            ax.plot(its, values, label=key)
        ax.set_title(f'{method} (stage {max(own)})')
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == '__main__':
    raise SystemExit(main())
