"""Evaluate generators (teacher, students, bicubic) on a folder of GT images and write a table and a grid.

    python -m sdakd_basicsr.tools.evaluate --gt datasets/DIV2K_valid/HR --degradation both --seed 0 \\
        --teacher experiments/pretrained_models/RealESRGAN_x4plus.pth \\
        --student w0.5=options/test/test_sdakd_student_x4_w0.5.yml \\
        --student w0.25=experiments/sdakd_realesrgan_x4_w0.25_stage3/models/net_g_latest.pth:16:8 \\
        --out results/evaluate

Inputs: ``--gt`` with LR made by a fixed, seeded degradation (``bicubic``: MATLAB-style x1/scale;
``realesrgan``: basicsr's second-order pipeline with the Real-ESRGAN x4plus settings, image i seeded with
seed + i; ``both``, the default: one table for each), or ``--gt`` and ``--lr`` folders of pairs (same file
names). Generators: ``bicubic`` always; ``--teacher SPEC`` and
``--student NAME=SPEC`` where SPEC is a checkpoint or a release folder (the architecture is read from the weights,
as ``tools.upscale`` reads it), an option file (``network_g`` + ``path.pretrain_network_g``) or
``checkpoint.pth:num_feat:num_grow_ch[:num_block]``.
Metrics: PSNR and SSIM on RGB and on Y, PSNR against the teacher's output, NIQE (skipped with a note on
images too small for it); LPIPS (against GT and against the teacher) and FID (against the GT set, protocol
printed under the table) when their weights are on disk: ``--lpips-weights`` / ``--fid-inception``, else
searched in ``experiments/pretrained_models/`` and the torch hub cache; when absent the table says which
file is missing and where to put it, never silently. Large images run
tiled (``--tile``), half precision on CUDA with ``--fp16``. GT files that cannot be read, are truncated, are too
small to measure or (``--lr``) have no LR partner are named and skipped (exit status 1; 2 when none is left).
Writes ``results.md`` (a table per kind of LR),
``results.csv`` (column ``lr``: which LR) and ``grid.png`` (per kind of LR, a row of crops of the first image,
taken where it has the most fine detail: its LR and every generator's output).
"""
import argparse
import csv
import os
import sys
from collections import OrderedDict
from os import path as osp
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np
import torch
from torch import Tensor, nn

import sdakd_basicsr  # noqa: F401  (registration)
from sdakd_basicsr.archs.generator_call import REALESRGAN_X4PLUS, family_of
from sdakd_basicsr.checkpoints import EMA_FIRST, load_generator
from sdakd_basicsr.data.degradation import LR_KIND_LABELS, LR_KINDS, make_pairs
from sdakd_basicsr.deploy.inference import load_upscaler
from sdakd_basicsr.distill.data_checks import truncation_of
from sdakd_basicsr.distill.option_file import read_option_file
from sdakd_basicsr.metrics import images
from sdakd_basicsr.metrics import perceptual as pm
from sdakd_basicsr.metrics import quality, reporting


def tiled(net: nn.Module, tile: int, overlap: int = 16, scale: int = 4, fp16: bool = False) -> Callable:
    """Run ``net`` on LR tiles of ``tile`` px with ``overlap`` px context; 0 = whole image."""
    device = next(net.parameters()).device
    half = fp16 and device.type == 'cuda'
    if half:
        net = net.half()

    def run(x: Tensor) -> Tensor:
        x = x.to(device).half() if half else x.to(device)
        with torch.no_grad():
            if not tile or (x.shape[2] <= tile and x.shape[3] <= tile):
                return net(x).float()
            b, c, h, w = x.shape
            out = x.new_zeros(b, c, h * scale, w * scale, dtype=torch.float32)
            for top in range(0, h, tile):
                for left in range(0, w, tile):
                    t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
                    t1, l1 = min(top + tile + overlap, h), min(left + tile + overlap, w)
                    y = net(x[:, :, t0:t1, l0:l1]).float()
                    bottom, right = min(top + tile, h), min(left + tile, w)
                    out[:, :, top * scale:bottom * scale, left * scale:right * scale] = \
                        y[:, :, (top - t0) * scale:(bottom - t0) * scale, (left - l0) * scale:(right - l0) * scale]
            return out
    return run


def generator_from_spec(spec: str, device, what: str = '--student') -> nn.Module:
    """A generator from ``spec``: a checkpoint file or a release folder (architecture, widths, depth and scale read
    from the weights, as ``tools.upscale`` reads them: RRDBNet or SRVGGNetCompact; ``params_ema`` first), an option
    file (``network_g`` + ``path.pretrain_network_g``: any registered generator), or the older
    ``ckpt.pth:num_feat:num_grow_ch[:num_block]`` (an RRDBNet)."""
    if spec.endswith(('.yml', '.yaml')):
        opt = read_option_file(spec)
        family_of(opt['network_g']).check_exportable(f'evaluate {spec}')  # single-input generators only
        return load_generator(opt['network_g'], opt['path']['pretrain_network_g'],
                              (opt.get('path') or {}).get('param_key_g', EMA_FIRST), device)
    if osp.exists(spec) or ':' not in spec:
        return load_upscaler(spec, str(device), what=what)[0]
    parts = spec.split(':')
    if len(parts) not in (3, 4):
        raise ValueError(f'{what} {spec!r}: expected a checkpoint, a release folder, an option file (.yml) or '
                         'ckpt.pth:num_feat:num_grow_ch[:num_block]')
    net_spec = dict(REALESRGAN_X4PLUS, num_feat=int(parts[1]), num_grow_ch=int(parts[2]))
    if len(parts) == 4:
        net_spec['num_block'] = int(parts[3])
    return load_generator(net_spec, parts[0], EMA_FIRST, device)


def perceptual_metrics(args: argparse.Namespace, device: torch.device, notes: List[str]) -> tuple:
    """(LPIPS, FID) metric objects or None each. A weights file given on the command line must exist (the
    run stops at once otherwise); without the flag the documented places are searched and a missing file
    becomes a note in the table."""
    return (pm.build_metric(pm.LPIPSMetric, args.lpips_weights, notes.append, device),
            pm.build_metric(pm.FIDMetric, args.fid_inception, notes.append, device))


MIN_SIDE = 16  # PSNR/SSIM crop a 4-pixel border: a smaller image leaves (almost) nothing to measure


def usable_images(paths: List[str], scale: int, lr_folder: Optional[str]) -> tuple:
    """([(name, GT RGB)], [why each other file was skipped]): unreadable or truncated files, images smaller than
    ``MIN_SIDE`` (or than the scale allows), and, with ``--lr``, GT images whose LR partner is missing."""
    usable, skipped = [], []
    for path in paths:
        name = osp.basename(path)
        why = truncation_of(path)
        img = None if why else cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            skipped.append(f'{path}: {why or "cannot be read (not an image, or damaged)"}')
        elif min(img.shape[:2]) < max(MIN_SIDE, 2 * scale):
            skipped.append(f'{path}: {img.shape[1]}x{img.shape[0]} is smaller than {max(MIN_SIDE, 2 * scale)} px '
                           'on a side (too small to measure)')
        elif lr_folder and not osp.isfile(osp.join(lr_folder, name)):
            skipped.append(f'{path}: no LR partner {osp.join(lr_folder, name)}')
        else:
            usable.append((name, cv2.cvtColor(img, cv2.COLOR_BGR2RGB)))
    return usable, skipped


TABLE = (('generator', None), ('PSNR', 'psnr'), ('SSIM', 'ssim'), ('PSNR-Y', 'psnr_y'), ('SSIM-Y', 'ssim_y'),
         ('PSNR vs teacher', 'psnr_teacher'), ('PSNR-Y vs teacher', 'psnr_teacher_y'),
         ('chroma PSNR vs teacher', 'psnr_teacher_cbcr'), ('HF energy / teacher', 'hf_ratio'), ('NIQE', 'niqe'))


def evaluate_pairs(generators: Dict[str, Callable], pairs: list, teacher: Optional[str], metrics: tuple,
                   notes: List[str], fid_note: str) -> tuple:
    """(header, keys, results, outputs) of every generator on one set of (name, LR, GT) pairs."""
    lpips_metric, fid_metric = metrics
    results = quality.evaluate(generators, pairs, teacher=teacher or 'teacher', log=notes.append)
    outputs = results.pop('_outputs')
    header, keys = [h for h, _ in TABLE], [k for _, k in TABLE[1:]]
    if lpips_metric is not None:
        pm.add_lpips(results, outputs, pairs, lpips_metric, teacher)
        header += ['LPIPS', 'LPIPS vs teacher']
        keys += ['lpips', 'lpips_teacher']
    if fid_metric is not None and pm.add_fid(results, outputs, pairs, fid_metric, notes.append):
        header.append('FID')
        keys.append('fid')
        notes.append(pm.fid_protocol(len(pairs), fid_note))
    return header, keys, results, outputs


def grid_row(label: str, generators: Dict[str, Callable], outputs: dict, pair: tuple, scale: int,
             size: int = 192) -> list:
    """One picture row: the LR (nearest) and every generator's output on the most detailed window of ``pair``."""
    name, lr, gt = pair
    top, left = images.detail_window(gt, size, scale)
    size = min(size, gt.shape[0], gt.shape[1])
    size -= size % scale

    def cut(img: np.ndarray) -> np.ndarray:
        return img[top:top + size, left:left + size]
    lr_up = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
    return ([(f'{label}: LR', cut(lr_up))] + [(g, cut(outputs[g][name])) for g in generators] + [('GT', cut(gt))])


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gt', required=True, help='folder of GT images')
    parser.add_argument('--lr', help='folder of LR images with the same names (else --degradation)')
    parser.add_argument('--degradation', default='both', choices=[*LR_KINDS, 'both'],
                        help='the LR made from each GT: bicubic, realesrgan (seeded per image) or both (default: '
                        'one table each)')
    parser.add_argument('--seed', type=int, default=0, help='realesrgan: image i is degraded with seed + i')
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--teacher', metavar='SPEC', help='the teacher: a checkpoint (e.g. RealESRGAN_x4plus.pth), '
                        'a release folder or an option file, like --student\'s SPEC')
    parser.add_argument('--student', action='append', default=[], metavar='NAME=SPEC')
    parser.add_argument('--out', default=osp.join('results', 'evaluate'))
    parser.add_argument('--tile', type=int, default=0, help='LR tile size (0: whole images)')
    parser.add_argument('--fp16', action='store_true', help='half precision (CUDA only)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--lpips-weights', metavar='FILE',
                        help=f'torchvision AlexNet weights {pm.LPIPS_BACKBONE} for LPIPS (default: searched in '
                             'experiments/pretrained_models/ and the torch hub cache)')
    parser.add_argument('--fid-inception', metavar='FILE',
                        help=f'FID-Inception weights {pm.FID_INCEPTION} (default: searched like --lpips-weights)')
    args = parser.parse_args(argv)
    for item in args.student:
        if '=' not in item:
            parser.error(f'--student {item!r}: expected NAME=SPEC')
    try:
        return evaluate_command(args)
    except (OSError, ValueError) as err:  # a bad --gt/--lr folder, a checkpoint that is no generator, --out a file
        print(f'error: {err}', file=sys.stderr, flush=True)
        return 2


def evaluate_command(args: argparse.Namespace) -> int:
    """The command after its arguments: 0, or 1 when some GT images were skipped."""
    device = torch.device(args.device)
    images.check_output_folder(args.out, '--out', create=False)
    gt_paths = images.list_images(args.gt, '--gt')
    gts, skipped = usable_images(gt_paths, args.scale, args.lr)
    for line in skipped:
        print(f'skipped {line}', file=sys.stderr, flush=True)
    if not gts:
        print(f'error: --gt {args.gt}: no usable image (' + '; '.join(skipped[:3]) + ')', file=sys.stderr)
        return 2
    if args.lr:
        sets = {f'pairs from {args.lr}': [(name, images.read_rgb(osp.join(args.lr, name)), gt) for name, gt in gts]}
    else:
        kinds = LR_KINDS if args.degradation == 'both' else (args.degradation,)
        sets = {f'{kind} x{args.scale}' + (f', seed {args.seed} + image index' if kind == 'realesrgan' else ''):
                make_pairs(gts, kind, args.seed, args.scale) for kind in kinds}
    generators: Dict[str, Callable] = OrderedDict(bicubic=quality.bicubic(args.scale))
    teacher = None
    if args.teacher:
        teacher = 'teacher'
        generators[teacher] = tiled(generator_from_spec(args.teacher, device, '--teacher'), args.tile,
                                    scale=args.scale, fp16=args.fp16)
    for item in args.student:
        name, spec = item.split('=', 1)
        generators[name] = tiled(generator_from_spec(spec, device, f'--student {name}'), args.tile, scale=args.scale,
                                 fp16=args.fp16)
    notes: List[str] = []
    metrics = perceptual_metrics(args, device, notes)
    os.makedirs(args.out, exist_ok=True)
    sections, csv_rows, picture = [], [], []
    for lr_desc, pairs in sets.items():
        header, keys, results, outputs = evaluate_pairs(generators, pairs, teacher, metrics, notes,
                                                        f'the {len(pairs)} GT images of {args.gt}')
        rows = [[name] + [r.get(k, float('nan')) for k in keys] for name, r in results.items()]
        fmt = {i + 1: '.4f' for i, k in enumerate(keys) if k.startswith(('ssim', 'lpips'))}
        fmt.update({i + 1: '.3f' for i, k in enumerate(keys) if k == 'hf_ratio'})
        kind = lr_desc.split(' ')[0]
        title = LR_KIND_LABELS.get(kind, lr_desc)
        sections.append(f'## {title[0].upper() + title[1:]}\n\nLR: {lr_desc}.\n\n'
                        f'{reporting.markdown_table(header, rows, fmt=fmt)}')
        csv_rows += [[lr_desc] + row for row in rows]
        picture.append(grid_row(kind if kind in LR_KINDS else 'given', generators, outputs, pairs[0], args.scale))
    notes += [f'skipped {line}' for line in skipped]
    text = (f'# Evaluation\n\n{len(gts)} images from {args.gt}; PSNR/SSIM on RGB and Y with a 4-pixel border cropped; '
            f'LPIPS/FID on whole images.\n\n' + '\n\n'.join(sections) + '\n\n'
            + '\n'.join(f'- {n}' for n in dict.fromkeys(notes)) + '\n')
    with open(osp.join(args.out, 'results.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    with open(osp.join(args.out, 'results.csv'), 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['lr', 'generator'] + keys)
        writer.writerows(csv_rows)
    images.comparison_rows(picture, osp.join(args.out, 'grid.png'))
    print(text)
    skipped_note = f'; skipped {len(skipped)} image(s)' if skipped else ''
    print(f'wrote {args.out}/results.md, results.csv, grid.png{skipped_note}')
    return 1 if skipped else 0


if __name__ == '__main__':
    raise SystemExit(main())
