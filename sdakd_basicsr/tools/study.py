"""Run the SDAKD study (protocol in sdakd_basicsr/recipes/study.py) and write its report.

    python -m sdakd_basicsr.tools.study                         # all arms, seeds 0,1,2, two runs at a time
    python -m sdakd_basicsr.tools.study --iters 30,300,200,200 --seeds 0,1,2 --jobs 2
    python -m sdakd_basicsr.tools.study --report-only           # re-evaluate finished runs

Resumable: a finished run (marker ``.study_done`` in its experiment folder) is skipped, an interrupted one
continues from its last training state (``--auto_resume``). Progress (runs done, iterations, ETA) is printed
every 30 s; each run's console output goes to ``<out>/logs/<run>.out``. Writes ``<out>/study.md`` (tables,
verdicts, protocol, wall time), ``study.csv``, ``margins.png``, ``grads.png`` and ``grid.png``.
"""
import argparse
import csv
import glob
import os
import platform
import time
from os import path as osp
from typing import Dict, List, Optional

import numpy as np

import sdakd_basicsr  # noqa: F401  (compat fixes + registration)
from sdakd_basicsr.checkpoints import load_generator
from sdakd_basicsr.distill.teacher_cache_builder import build_from_options
from sdakd_basicsr.metrics import perceptual as pm
from sdakd_basicsr.metrics import quality, reporting
from sdakd_basicsr.metrics.images import comparison_grid
from sdakd_basicsr.recipes import demo
from sdakd_basicsr.recipes import study as st
from sdakd_basicsr.recipes.runner import run_all


def series_of(run_name: str) -> Dict[str, List[tuple]]:
    logs = sorted(glob.glob(osp.join('experiments', run_name, 'train_*.log')))
    return reporting.parse_train_log(logs[-1]) if logs else {}


def degraded_quality(generators: dict, arms: List[str], seeds: List[int]) -> str:
    """The held-out table again on Real-ESRGAN-degraded LR (x4plus's settings, seeded per image): PSNR vs GT and vs
    the teacher, and their margins over bicubic's."""
    results = quality.evaluate(generators, demo.heldout_pairs('realesrgan'), log=lambda m: None)
    results.pop('_outputs')
    keys = ('psnr', 'psnr_teacher', 'hf_ratio', 'niqe')

    def cells(values: Dict[str, List[float]]) -> List[str]:
        out = []
        for k in keys:
            mean, std = st.mean_std(values[k])
            out.append(f'{mean:.2f} ± {std:.2f}' if len(values[k]) > 1 else f'{mean:.2f}')
        margin = [v - results['bicubic']['psnr_teacher'] for v in values['psnr_teacher']]
        mean, std = st.mean_std(margin)
        return out + [f'{mean:+.2f} ± {std:.2f}' if len(margin) > 1 else f'{mean:+.2f}']
    rows = [[label] + cells({k: [results[label][k]] for k in keys})
            for label in ('bicubic', 'teacher', 'stage 1 (shared start)')]
    rows += [[arm] + cells({k: [results[f'{arm}|{s}'][k] for s in seeds] for k in keys}) for arm in arms]
    return reporting.markdown_table(['arm', 'PSNR vs GT', 'PSNR vs teacher', 'HF energy / teacher', 'NIQE',
                                     'PSNR vs teacher, margin over bicubic'], rows)


def report(runs: List[st.Run], arms: List[str], seeds: List[int], out: str, wall_s: Optional[float]) -> str:
    """Evaluate every arm's final students on the held-out images; write tables, verdicts and plots."""
    device = 'cpu'
    final = runs[-1].opt  # a stage-3 file: the teacher and student as trained
    teacher = load_generator(final['sdakd']['teacher_g']['network'], final['sdakd']['teacher_g']['path'],
                             final['sdakd']['teacher_g'].get('param_key', 'params_ema'), device)
    spec = final['network_g']
    generators = {'bicubic': quality.bicubic(4), 'teacher': quality.network(teacher),
                  'stage 1 (shared start)': quality.network(load_generator(
                      spec, osp.join('experiments', 'study_stage1', 'models', 'net_g_latest.pth')))}
    for arm in arms:
        for seed in seeds:
            ckpt = osp.join('experiments', st.final_run(arm, seed), 'models', 'net_g_latest.pth')
            generators[f'{arm}|{seed}'] = quality.network(load_generator(spec, ckpt))
    pairs = demo.heldout_pairs()
    demo.say(f'evaluating {len(generators)} generators on {len(pairs)} held-out images')
    results = quality.evaluate(generators, pairs, log=lambda m: None)
    outputs = results.pop('_outputs')
    metrics = [('psnr', 'PSNR vs GT', True), ('ssim', 'SSIM vs GT', True), ('psnr_teacher', 'PSNR vs teacher', True),
               ('psnr_teacher_y', 'PSNR-Y vs teacher', True), ('psnr_teacher_cbcr', 'chroma PSNR vs teacher', True),
               ('hf_ratio', 'HF energy / teacher', None),
               ('niqe', 'NIQE', False)]
    notes: List[str] = []  # LPIPS when its weights are on disk (never downloaded: a note says what is missing)
    lpips = pm.build_metric(pm.LPIPSMetric, None, notes.append)
    if lpips is not None:
        pm.add_lpips(results, outputs, pairs, lpips, 'teacher')
        metrics += [('lpips_teacher', 'LPIPS vs teacher', False), ('lpips', 'LPIPS vs GT', False)]
    per_arm = {arm: {m: [results[f'{arm}|{s}'][m] for s in seeds] for m, _, _ in metrics} for arm in arms}
    rows, csv_rows = [], []
    for label in ('bicubic', 'teacher', 'stage 1 (shared start)'):
        rows.append([label] + [results[label][m] for m, _, _ in metrics])
    for arm in arms:
        cells = []
        for m, _, _ in metrics:
            mean, std = st.mean_std(per_arm[arm][m])
            digits = 4 if m in ('ssim', 'hf_ratio', 'lpips', 'lpips_teacher') else 2
            cells.append(f'{mean:.{digits}f} ± {std:.{digits}f}')
        rows.append([arm] + cells)
        for s in seeds:
            csv_rows.append({'arm': arm, 'seed': s, **{m: results[f'{arm}|{s}'][m] for m, _, _ in metrics}})
    table = reporting.markdown_table(['arm'] + [h for _, h, _ in metrics], rows, fmt={2: '.4f', 6: '.3f'})
    degraded_table = degraded_quality(generators, arms, seeds)
    with open(osp.join(out, 'study.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
        writer.writeheader()
        writer.writerows(csv_rows)

    # (a) capacity mismatch: D_T's margin and the gradient it sends, per arm that has D_T in stage 3
    dyn_rows, dyn = [], {}
    for arm in arms:
        per_seed = {'dt_margin': [], 'ds_margin': [], 'grad_dt_ratio': [], 'grad_dt_end': [], 'grad_ds_end': []}
        for s in seeds:
            series = series_of(st.final_run(arm, s))
            per_seed['dt_margin'].append(st.tail_mean(st.margin_series(series, 'dt')))
            per_seed['ds_margin'].append(st.tail_mean(st.margin_series(series, 'ds')))
            grad = series.get('grad_l_g_gan_dt', [])
            per_seed['grad_dt_ratio'].append(st.tail_mean(grad) / st.head_mean(grad) if grad else float('nan'))
            per_seed['grad_dt_end'].append(st.tail_mean(grad))
            per_seed['grad_ds_end'].append(st.tail_mean(series.get('grad_l_g_gan_ds', [])))
        dyn[arm] = per_seed
        keys = ('dt_margin', 'ds_margin', 'grad_dt_end', 'grad_dt_ratio', 'grad_ds_end')
        dyn_rows.append([arm] + [_fmt(per_seed[k]) for k in keys])
    dyn_table = reporting.markdown_table(
        ['arm (stage 3)', 'D_T margin (real - fake logit), last 25 %', 'D_S margin, last 25 %',
         'RMS grad of w_t L_adv(D_T) at G output, last 25 %', 'same, last / first 25 %',
         'RMS grad of w_s L_adv(D_S), last 25 %'], dyn_rows)
    verdicts = _verdicts(arms, per_arm, dyn, seeds)

    def margins(series):
        return {'D_T': st.margin_series(series, 'dt'), 'D_S': st.margin_series(series, 'ds')}

    def grads(series):
        pairs_ = (('D_T', 'gan_dt'), ('D_S', 'gan_ds'), ('KD', 'kd'))
        return {name: series.get(f'grad_l_g_{key}', []) for name, key in pairs_}

    _plot(arms, seeds, 'margins.png', out, margins, 'real - fake mean logit')
    _plot(arms, seeds, 'grads.png', out, grads, 'RMS gradient at the student output', log_scale=True)
    _grid(arms, seeds[0], outputs, pairs, osp.join(out, 'grid.png'))
    iters = {r.stage: r.iters for r in runs}
    text = f"""# SDAKD study: does the student discriminator help at CPU scale?

Command: `python -m sdakd_basicsr.tools.study --iters {iters[0]},{iters[1]},{iters[2]},{iters[3]} \
--seeds {','.join(map(str, seeds))}`
Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU; torch {__import__('torch').__version__}.
Wall time: {f'{wall_s / 60:.0f} min' if wall_s else 'see the run log'}. Held-out images (never trained on):
{', '.join(p[0] for p in pairs)} (bicubic x4 LR).

## Protocol (fixed before the results)

{st.__doc__.split('The protocol is fixed here, before any result is seen, and printed in the report:')[1].strip()}

Iterations: stage 0 {iters[0]}, stage 1 {iters[1]} (shared), stages 2 and 3 {iters[2]} + {iters[3]} per arm
and seed. Arms:

{chr(10).join(f'- `{a}`: {st.ARMS[a].summary}' for a in arms)}

## Held-out quality (mean ± std over seeds {', '.join(map(str, seeds))})

{table}

## Held-out quality on Real-ESRGAN-degraded LR (seed {demo.EVAL_SEED} + image index; mean ± std over seeds)

{degraded_table}
{chr(10).join(notes)}

## Discriminator dynamics in stage 3 (mean ± std over seeds)

{dyn_table}

`margins.png`: D_T / D_S real-minus-fake logit over stage 3; `grads.png`: RMS gradient each adversarial term
sends to the student's output (log scale); `grid.png`: the same crops from every arm (seed {seeds[0]}).

## Verdicts

{chr(10).join('- ' + v for v in verdicts)}
"""
    with open(osp.join(out, 'study.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    print(text, flush=True)
    return text


def _fmt(values: List[float]) -> str:
    mean, std = st.mean_std(values)
    if mean != mean:
        return 'n/a'
    return f'{mean:.3g} ± {std:.2g}'


def _verdicts(arms: List[str], per_arm: dict, dyn: dict, seeds: List[int]) -> List[str]:
    out = []
    if 'teacher_d_only' in arms and 'sdakd' in arms:
        t, s = dyn['teacher_d_only'], dyn['sdakd']
        verdict = st.compare(t['dt_margin'], s['dt_margin'], higher_is_better=True)
        margin = {'better': 'larger', 'worse': 'smaller'}.get(verdict, verdict)
        ratio_t, ratio_s = st.mean_std(t['grad_dt_ratio'])[0], st.mean_std(s['grad_dt_ratio'])[0]
        trend = lambda r: 'vanishes' if r < 0.5 else 'explodes' if r > 2 else 'stays within 2x'  # noqa: E731
        out.append(f'(a) capacity mismatch: D_T\'s margin in teacher_d_only is {_fmt(t["dt_margin"])} vs '
                   f'{_fmt(s["dt_margin"])} in sdakd ({margin} beyond the seed spread); D_T\'s gradient to the '
                   f'student {trend(ratio_t)} in teacher_d_only '
                   f'(last/first quarter {ratio_t:.2f}) and {trend(ratio_s)} in sdakd ({ratio_s:.2f}).')
    if 'sdakd' in arms:
        for other in [a for a in arms if a != 'sdakd']:
            parts = []
            for m, name, better in (('psnr_teacher', 'fidelity (PSNR vs teacher)', True),
                                    ('hf_ratio', 'sharpness (|HF ratio - 1|)', False),
                                    ('niqe', 'NIQE', False)):
                a = per_arm['sdakd'][m] if m != 'hf_ratio' else [abs(v - 1) for v in per_arm['sdakd'][m]]
                b = per_arm[other][m] if m != 'hf_ratio' else [abs(v - 1) for v in per_arm[other][m]]
                verdict = st.compare(a, b, higher_is_better=better)
                parts.append(f'{name}: sdakd {verdict}' + (f' ({st.mean_std(a)[0]:.3f} vs {st.mean_std(b)[0]:.3f})'))
            tag = '(c) ablation' if other in ('no_fmd', 'stage2_no_adv', 'student_d_only') else '(b) baseline'
            out.append(f'{tag} sdakd vs {other}: ' + '; '.join(parts) + '.')
    return out


def _plot(arms, seeds, file, out, pick, ylabel, log_scale=False) -> None:
    import matplotlib  # lazy: plots only (+0.7 s import)
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use, as above
    fig, axes = plt.subplots(1, len(arms), figsize=(3.6 * len(arms), 3.2), squeeze=False, sharey=True)
    for ax, arm in zip(axes[0], arms):
        for seed in seeds:
            for i, (label, series) in enumerate(pick(series_of(st.final_run(arm, seed))).items()):
                if series:
                    its, values = zip(*series)
                    ax.plot(its, values, color=f'C{i}', alpha=0.7, label=label if seed == seeds[0] else None)
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel('stage-3 iteration')
        if log_scale:
            ax.set_yscale('log')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(ylabel)
    fig.tight_layout()
    fig.savefig(osp.join(out, file), dpi=90)
    plt.close(fig)


def _grid(arms, seed, outputs, pairs, path) -> None:
    """One row per generator (bicubic, teacher, each arm at ``seed``): a 128x128 crop of each held-out image."""

    labels = ['bicubic', 'teacher'] + [f'{a}|{seed}' for a in arms]
    corners = {}
    for name, _, gt in pairs:  # the astronaut's face; the centre of any other image
        h, w = gt.shape[:2]
        corners[name] = (min(64, h - 128), min(176, w - 128)) if 'astronaut' in name else (h // 2 - 64, w // 2 - 64)
    panels = []
    for label in labels:
        crops = [outputs[label][name][y:y + 128, x:x + 128] for name, (y, x) in corners.items()]
        panels.append((label.split('|')[0], np.concatenate(crops, axis=0)))
    comparison_grid(panels, path)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arms', default=','.join(st.ARMS), help=f'comma-separated: {",".join(st.ARMS)}')
    parser.add_argument('--seeds', default='0,1,2')
    parser.add_argument('--iters', default='30,300,200,200', help='iterations of stages 0,1,2,3 (2 and 3: per arm)')
    parser.add_argument('--jobs', type=int, default=2, help='runs in parallel (threads per run: 2 // jobs)')
    parser.add_argument('--out', default=osp.join('experiments', 'sdakd_study'))
    parser.add_argument('--report-only', action='store_true')
    parser.add_argument('--dry-run', action='store_true', help='print the plan and stop')
    args = parser.parse_args(argv)
    arms = args.arms.split(',')
    seeds = [int(s) for s in args.seeds.split(',')]
    iters = dict(enumerate(int(v) for v in args.iters.split(',')))
    if len(iters) != 4:
        parser.error('--iters takes four numbers: stages 0,1,2,3')
    if not osp.isdir(st.OPTIONS_DIR):
        parser.error(f'run from the repository root ({st.OPTIONS_DIR}/ not found in {os.getcwd()})')
    runs = st.plan(demo.load_stages(st.OPTIONS_DIR), arms, seeds, iters)
    if args.dry_run:
        for r in runs:
            print(f'{r.name}: stage {r.stage}, {r.iters} iterations, after {", ".join(r.after) or "-"}')
        return 0
    os.makedirs(args.out, exist_ok=True)
    start = time.time()
    if not args.report_only:
        demo.convert_teacher()
        demo.prepare_data()
        if not osp.isfile(st.CACHE_FILE):
            build_from_options(runs[1].opt, log=demo.say)
        run_all(runs, args.out, args.jobs)
    report(runs, arms, seeds, args.out, None if args.report_only else time.time() - start)
    demo.say(f'wrote {osp.join(args.out, "study.md")} ({(time.time() - start) / 60:.1f} min)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
