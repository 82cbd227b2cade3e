"""Run the anchors study (protocol and verdict rules in sdakd_basicsr/recipes/anchors.py) and write its report.

    python -m sdakd_basicsr.tools.anchors                          # six arms, seeds 0,1,2, 240 s per tail
    python -m sdakd_basicsr.tools.anchors --budget-s 120 --seeds 0,1,2 --arms kd,texture
    python -m sdakd_basicsr.tools.anchors --report-only            # re-evaluate finished runs

Trains the demo's stages 0 and 1 first when they are missing (the shared start), probes every tail phase's seconds
per iteration (``<out>/seconds_per_iter.json``; kept, so a rerun uses the same iterations), then runs every arm and
seed, two at a time with one thread each. Resumable like the study tool: a finished run is skipped. Writes
``<out>/anchors.md`` (tables, verdicts, the winner, protocol, wall time), ``anchors.csv`` (per seed), ``look.png``
(fidelity against NIQE and HF ratio, per arm and seed) and ``grid.png`` (the same crops from every arm).
"""
import argparse
import csv
import json
import os
import platform
import time
from os import path as osp
from typing import Dict, List, Optional

import numpy as np

import sdakd_basicsr  # noqa: F401  (compat fixes + registration)
from sdakd_basicsr.archs.generator_call import REALESRGAN_X4PLUS
from sdakd_basicsr.checkpoints import load_generator
from sdakd_basicsr.data.degradation import LR_KIND_LABELS, LR_KINDS
from sdakd_basicsr.metrics import quality, reporting
from sdakd_basicsr.metrics.images import comparison_rows, detail_window
from sdakd_basicsr.recipes import anchors as an
from sdakd_basicsr.recipes import demo
from sdakd_basicsr.recipes.front import seconds_per_iteration as logged_seconds_per_iteration
from sdakd_basicsr.recipes.runner import read_marker, run_all
from sdakd_basicsr.recipes.study import mean_std

METRICS = (('psnr_teacher', 'PSNR vs teacher', '.2f'), ('margin', 'margin over bicubic (dB)', '+.2f'),
           ('hf_ratio', 'HF energy / teacher', '.3f'), ('niqe', 'NIQE', '.2f'),
           ('psnr_teacher_cbcr', 'chroma PSNR vs teacher', '.2f'), ('psnr', 'PSNR vs GT', '.2f'))


def seconds_per_iteration(run_name: str) -> float:
    """basicsr's running mean iteration time, from the last progress line of a run's log."""
    logs = sorted(f for f in os.listdir(osp.join('experiments', run_name)) if f.startswith('train_'))
    if not logs:
        raise FileNotFoundError(f'no training log in experiments/{run_name}')
    with open(osp.join('experiments', run_name, logs[-1]), encoding='utf-8') as f:
        seconds = logged_seconds_per_iteration(f.read())
    if seconds is None:
        raise ValueError(f'experiments/{run_name}/{logs[-1]}: no progress line with an iteration time')
    return seconds


def ensure_shared_start(overrides: List[str]) -> None:
    """The compact demo's stages 0 and 1 at their default iterations (``an.START_RECIPE``), when their checkpoints
    are missing."""
    recipe = demo.demo_student(an.START_RECIPE)
    iters = dict(zip((step for step, _ in recipe.steps), (int(v) for v in recipe.default_iters.split(','))))
    for step, target in (('stage0', an.D_TEACHER), ('stage1', an.START_G)):
        if osp.isfile(target):
            demo.say(f'shared start: {target} (kept)')
            continue
        demo.say(f'shared start: training demo {step} ({iters[step]} iterations)')
        demo.run_option_file(demo.stage_file(step, recipe.key), iters[step], overrides,
                             demo.experiment(step, recipe.key))


def calibrate(stages: Dict[int, dict], arms: List[str], probe_iters: int, jobs: int, out: str) -> Dict[str, float]:
    path = osp.join(out, 'seconds_per_iter.json')
    known = {}
    if osp.isfile(path):
        with open(path) as f:
            known = json.load(f)
    wanted = [r for r in an.probe_runs(stages, arms, probe_iters) if r.name.split('_probe_')[1] not in known]
    if wanted:
        demo.say(f'probing {len(wanted)} tail phase(s) for {probe_iters} iterations each')
        run_all(wanted, out, jobs)
        for run in wanted:
            known[run.name.split('_probe_')[1]] = seconds_per_iteration(run.name)
        with open(path, 'w') as f:
            json.dump(known, f, indent=1)
    demo.say('seconds per iteration: ' + ', '.join(f'{k} {v:.2f}' for k, v in known.items()))
    return known


def run_seconds(run_name: str) -> float:
    marker = read_marker(run_name)
    return marker['wall_s'] if marker else float('nan')


def evaluate_all(arms: List[str], seeds: List[int], spec: dict, other_photos: str,
                 budget_s: float) -> Dict[str, Dict[str, dict]]:
    """{set/kind: results} for bicubic, the teacher, the shared start and every arm|seed."""
    teacher = load_generator(REALESRGAN_X4PLUS, demo.TEACHER_FILE, 'params_ema', 'cpu')
    generators = {'bicubic': quality.bicubic(4), 'teacher': quality.network(teacher),
                  'start (demo stage 1)': quality.network(load_generator(spec, an.START_G))}
    for arm in arms:
        for seed in seeds:
            ckpt = osp.join('experiments', an.final_run(arm, seed, budget_s), 'models', 'net_g_latest.pth')
            generators[f'{arm}|{seed}'] = quality.network(load_generator(spec, ckpt))
    out = {}
    for kind in LR_KINDS:
        for set_name, pairs in (('held-out', demo.heldout_pairs(kind)),
                                ('other photos', demo.other_photo_pairs(other_photos, kind=kind))):
            if not pairs:
                continue
            demo.say(f'evaluating {len(generators)} generators on {set_name}, {LR_KIND_LABELS[kind]}')
            results = quality.evaluate(generators, pairs, log=lambda m: None)
            for r in results.values():
                if isinstance(r, dict) and 'psnr_teacher' in r:
                    r['margin'] = r['psnr_teacher'] - results['bicubic']['psnr_teacher']
            results['bicubic']['margin'] = 0.0
            out[f'{set_name}|{kind}'] = results
    return out


def arm_values(results: dict, arm: str, seeds: List[int], key: str) -> List[float]:
    return [results[f'{arm}|{s}'][key] for s in seeds]


def table(results: dict, arms: List[str], seeds: List[int]) -> str:
    rows = [[label] + [format(results[label].get(k, float('nan')), f) for k, _, f in METRICS]
            for label in ('bicubic', 'teacher', 'start (demo stage 1)')]
    for arm in arms:
        cells = []
        for key, _, fmt in METRICS:
            mean, std = mean_std(arm_values(results, arm, seeds, key))
            cells.append(f'{format(mean, fmt)} ± {format(std, fmt.lstrip("+"))}')
        rows.append([f'({"abcdef"[an.ARM_NAMES.index(arm)]}) `{arm}`'] + cells)
    return reporting.markdown_table(['arm'] + [label for _, label, _ in METRICS], rows)


def mean_results(results: dict, arm: str, seeds: List[int]) -> dict:
    """bicubic, teacher and the arm's mean over seeds, in the shape ``demo.check_targets`` reads."""
    keys = results[f'{arm}|{seeds[0]}'].keys()
    return {'bicubic': results['bicubic'], 'teacher': results['teacher'],
            arm: {k: float(np.mean(arm_values(results, arm, seeds, k))) for k in keys}}


def verdict_lines(per_set: dict, arms: List[str], seeds: List[int]) -> List[str]:
    clean = per_set['held-out|bicubic']
    values = {a: {k: arm_values(clean, a, seeds, k) for k in ('niqe', 'hf_ratio', 'psnr_teacher')} for a in arms}
    lines = []
    for x in [a for a in ('sdakd', 'sdakd_texture') if a in arms]:
        for y in [a for a in ('kd', 'eco', 'gan_dt', 'texture') if a in arms]:
            ok, why = an.beats(values[x], values[y])
            back, why_back = an.beats(values[y], values[x])
            verdict = ('beats' if ok else 'is beaten by' if back else 'does not beat')
            lines.append(f'`{x}` {verdict} `{y}` in look at equal fidelity ({why if ok or not back else why_back})')
    return lines


def look_plot(per_set: dict, arms: List[str], seeds: List[int], path: str) -> None:
    import matplotlib  # lazy: plots only (+0.7 s import)
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use, as above
    clean = per_set['held-out|bicubic']
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, arm in enumerate(arms):
        margin = arm_values(clean, arm, seeds, 'margin')
        for ax, key in zip(axes, ('niqe', 'hf_ratio')):
            ax.scatter(arm_values(clean, arm, seeds, key), margin, color=f'C{i}', label=arm if key == 'niqe' else None)
    for ax, key, label in zip(axes, ('niqe', 'hf_ratio'), ('NIQE (lower: more natural)', 'HF energy / teacher')):
        ax.axvline(clean['teacher'][key], color='k', lw=0.8, ls='--')
        ax.set_xlabel(label)
        ax.set_ylabel('PSNR vs teacher, margin over bicubic (dB)')
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle('held-out images, clean LR; one point per seed (dashed: the teacher)')
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def grid(per_set: dict, arms: List[str], seed: int, path: str, size: int = 128) -> None:
    rows = []
    for kind in LR_KINDS:
        results = per_set[f'held-out|{kind}']
        outputs = results['_outputs']
        name, _, gt = demo.heldout_pairs(kind)[0]
        top, left = detail_window(gt, size, 4)
        crop = lambda img: img[top:top + size, left:left + size]  # noqa: E731
        labels = ['bicubic', 'teacher'] + [f'{a}|{seed}' for a in arms]
        rows.append([(f'{label.split("|")[0]} ({"degraded" if kind == "realesrgan" else "clean"})',
                      crop(outputs[label][name])) for label in labels])
    comparison_rows(rows, path)


def report(arms: List[str], seeds: List[int], out: str, spi: Dict[str, float], iterations: Dict[str, int],
           budget_s: float, wall_s: Optional[float], other_photos: str) -> str:
    spec = demo.student_spec()
    per_set = evaluate_all(arms, seeds, spec, other_photos, budget_s)
    sections, csv_rows = [], []
    for key, results in per_set.items():
        set_name, kind = key.split('|')
        sections.append(f'### {set_name}, {LR_KIND_LABELS[kind]}\n\n{table(results, arms, seeds)}')
        for arm in arms:
            for s in seeds:
                csv_rows.append({'set': set_name, 'lr': kind, 'arm': arm, 'seed': s,
                                 **{k: results[f'{arm}|{s}'][k] for k, _, _ in METRICS}})
    with open(osp.join(out, 'anchors.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
        writer.writeheader()
        writer.writerows(csv_rows)
    scores, score_rows = {}, []
    for arm in arms:
        met, total = 0, 0
        for kind in LR_KINDS:
            rows = demo.check_targets(mean_results(per_set[f'held-out|{kind}'], arm, seeds), arm, kind)
            met += sum(1 for r in rows if r[5])
            total += len(rows)
        niqe = float(np.mean(arm_values(per_set['held-out|bicubic'], arm, seeds, 'niqe')))
        scores[arm] = (met, niqe)
        wall = [sum(run_seconds(an.run_name(arm, s, p, budget_s)) for p in an.ARMS[arm].phases) for s in seeds]
        score_rows.append([arm, f'{met}/{total}', f'{niqe:.2f}', ' + '.join(
            f'{iterations[p.key]} it x {spi[p.key]:.2f} s' for p in an.ARMS[arm].phases),
            f'{np.nanmean(wall):.0f}'])
    best = an.winner(scores)
    look_plot(per_set, arms, seeds, osp.join(out, 'look.png'))
    grid(per_set, arms, seeds[0], osp.join(out, 'grid.png'))
    verdicts = verdict_lines(per_set, arms, seeds)
    text = f"""# Anchors study: SDAKD against teacher-as-target recipes, at an equal wall-clock budget

Command: `python -m sdakd_basicsr.tools.anchors --arms {','.join(arms)} --seeds {','.join(map(str, seeds))} \
--budget-s {budget_s:g} --out {out}`
Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU; torch {__import__('torch').__version__}.
Wall time: {f'{wall_s / 60:.0f} min' if wall_s else 'see the run log'}.

## Protocol and verdict rules (fixed before the results)

{an.__doc__.split('printed in the report:')[1].strip()}

Arms:

{chr(10).join(f'- `{a}`: {an.ARMS[a].summary}' for a in arms)}

## Budget: iterations per tail (budget {budget_s:g} s per arm and seed, one thread, two runs at a time)

{reporting.markdown_table(['arm', 'demo targets met (held-out, mean over seeds)', 'NIQE (clean)',
                           'iterations x probed s/it', 'measured tail wall-clock, s (mean over seeds)'], score_rows)}

## Quality (mean ± std over seeds {', '.join(map(str, seeds))})

{chr(10).join(sections)}

`look.png`: fidelity against NIQE and the HF ratio, one point per arm and seed; `grid.png`: crops of every arm
(seed {seeds[0]}) on clean and degraded LR.

## Verdicts

{chr(10).join('- ' + v for v in verdicts)}

Winner by the rule (most demo targets met, then the lower NIQE): **{best}**.
"""
    with open(osp.join(out, 'anchors.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    print(text, flush=True)
    return best


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arms', default=','.join(an.ARM_NAMES), help=f'comma-separated: {",".join(an.ARM_NAMES)}')
    parser.add_argument('--seeds', default='0,1,2')
    parser.add_argument('--budget-s', type=float, default=240, help='training seconds of every arm\'s tail, per seed')
    parser.add_argument('--probe-iters', type=int, default=20, help='iterations of each tail phase\'s probe run')
    parser.add_argument('--jobs', type=int, default=2, help='runs in parallel (threads per run: 2 // jobs)')
    parser.add_argument('--other-photos', default='', help='a folder of photos for the second table (default: '
                        "matplotlib's bundled portrait)")
    parser.add_argument('--out', default=an.OUT_DIR)
    parser.add_argument('--report-only', action='store_true')
    parser.add_argument('--dry-run', action='store_true', help='print the plan (with the probed speeds) and stop')
    args = parser.parse_args(argv)
    arms = args.arms.split(',')
    try:
        an.phases(arms)
        seeds = [int(s) for s in args.seeds.split(',')]
    except (KeyError, ValueError) as err:
        parser.error(f'--arms/--seeds: {err}')
    if args.budget_s <= 0 or args.probe_iters < 1:
        parser.error('--budget-s must be > 0 and --probe-iters >= 1')
    os.makedirs(args.out, exist_ok=True)
    overrides = demo.precision_overrides()
    stages = demo.load_stages(demo.demo_student().options_dir, overrides)
    start = time.time()
    if not args.report_only:
        demo.convert_teacher()
        demo.prepare_data()
        demo.ensure_teacher_cache(demo.demo_student().options_dir, overrides)
        ensure_shared_start(overrides)
    spi = calibrate(stages, arms, args.probe_iters, args.jobs, args.out)
    iterations = an.tail_iterations(spi, args.budget_s, arms)
    runs = an.plan(stages, arms, seeds, iterations, args.budget_s)
    if args.dry_run:
        for r in runs:
            print(f'{r.name}: stage file {r.stage}, {r.iters} iterations, after {", ".join(r.after) or "-"}')
        return 0
    if not args.report_only:
        run_all(runs, args.out, args.jobs)
    best = report(arms, seeds, args.out, spi, iterations, args.budget_s,
                  None if args.report_only else time.time() - start, args.other_photos)
    demo.say(f'wrote {osp.join(args.out, "anchors.md")} (winner: {best}; {(time.time() - start) / 60:.1f} min)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
