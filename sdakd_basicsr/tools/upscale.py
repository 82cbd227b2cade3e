"""Upscale images with a student (or teacher) checkpoint, like Real-ESRGAN's inference_realesrgan.py.

    python -m sdakd_basicsr.tools.upscale -i inputs/ -o results/ --model experiments/<run>/models/net_g_latest.pth
    python -m sdakd_basicsr.tools.upscale -i photo.png -o out/ --model release/student_x4 --tile 256 --outscale 3.5

Same flags and output names as Real-ESRGAN (``<name>_<suffix>.<ext>``; RGBA images are saved as PNG), the
same padding/tiling, so the output equals ``RealESRGANer``'s with the same tile and pre-pad settings (tested).
Widths, depth and scale come from the checkpoint. Gray, RGBA and 16-bit images are handled; an unreadable or
truncated file, or an output that cannot be written, is reported and skipped, the other images are processed, and
the exit status is 1 when any image failed (2 for a bad model, input or output folder, before any work). CUDA is
used when present (``--device``).
"""
import argparse
import glob
import sys
import time
from os import path as osp
from typing import List, Optional

import cv2
import torch

from sdakd_basicsr.deploy.inference import load_upscaler, upscale
from sdakd_basicsr.distill.data_checks import truncation_of
from sdakd_basicsr.metrics.images import IMAGE_EXTENSIONS, check_output_folder, is_image_file


def inputs_of(path: str) -> List[str]:
    """The images to upscale: the file, or the image files of a folder (other files are left alone)."""
    if osp.isfile(path):
        return [path]
    if osp.isdir(path):
        files = sorted(p for p in glob.glob(osp.join(path, '*')) if is_image_file(p))
        if not files:
            raise FileNotFoundError(f'-i {path}: the folder holds no image files ({", ".join(IMAGE_EXTENSIONS)})')
        return files
    raise FileNotFoundError(f'-i: no such file or folder: {path}')


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-i', '--input', required=True, help='an image or a folder of images')
    parser.add_argument('-o', '--output', default='results', help='output folder')
    parser.add_argument('--model', required=True, help='checkpoint (.pth) or release folder')
    parser.add_argument('-s', '--outscale', type=float, default=None, help='final scale (default: the model\'s)')
    parser.add_argument('-t', '--tile', type=int, default=0, help='tile size, 0: whole images')
    parser.add_argument('--tile-pad', '--tile_pad', type=int, default=10)
    parser.add_argument('--pre-pad', '--pre_pad', type=int, default=0)
    parser.add_argument('--fp16', action='store_true', help='half precision (CUDA)')
    parser.add_argument('--alpha-upsampler', '--alpha_upsampler', choices=('realesrgan', 'bicubic'),
                        default='realesrgan')
    parser.add_argument('--ext', choices=('auto', 'jpg', 'png'), default='auto')
    parser.add_argument('--suffix', default='out')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    if args.fp16 and args.device == 'cpu':
        parser.error('--fp16 needs a CUDA device (half-precision convolutions are not supported on this CPU path)')

    try:
        net, scale, spec = load_upscaler(args.model, args.device, args.fp16)
        files = inputs_of(args.input)
        check_output_folder(args.output, '-o')
    except (OSError, ValueError) as err:  # a bad model, input or output: nothing to do, said plainly
        print(f'error: {err}', file=sys.stderr, flush=True)
        return 2
    shape = ', '.join(f'{k} {v}' for k, v in spec.items()
                      if k.startswith('num_') and k not in ('num_in_ch', 'num_out_ch'))
    print(f'model: {spec["type"]} {shape}, x{scale}; {len(files)} image(s) on {args.device}', flush=True)
    failed = []
    start = time.time()
    for i, path in enumerate(files, 1):
        name, ext = osp.splitext(osp.basename(path))
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        broken = truncation_of(path)  # OpenCV decodes a truncated JPEG/PNG in part, without an error
        if img is None or broken:
            failed.append(path)
            why = broken or 'cannot read this image (not an image, or damaged)'
            print(f'[{i}/{len(files)}] {path}: {why}; skipped', file=sys.stderr, flush=True)
            continue
        t0 = time.time()
        try:
            out, mode = upscale(net, scale, img, args.tile, args.tile_pad, args.pre_pad, args.outscale,
                                args.alpha_upsampler)
        except RuntimeError as err:  # typically out of memory: say what helps
            failed.append(path)
            print(f'[{i}/{len(files)}] {path}: {err}; try a smaller --tile', file=sys.stderr, flush=True)
            continue
        extension = ext[1:] if args.ext == 'auto' else args.ext
        if mode == 'RGBA':
            extension = 'png'
        target = osp.join(args.output, f'{name}_{args.suffix}.{extension}' if args.suffix else f'{name}.{extension}')
        if not cv2.imwrite(target, out):
            failed.append(path)
            print(f'[{i}/{len(files)}] {path}: could not write {target}; skipped', file=sys.stderr, flush=True)
            continue
        print(f'[{i}/{len(files)}] {path} ({img.shape[1]}x{img.shape[0]}, {mode}) -> {target} '
              f'({out.shape[1]}x{out.shape[0]}, {time.time() - t0:.1f} s)', flush=True)
    print(f'done: {len(files) - len(failed)} of {len(files)} in {time.time() - start:.1f} s'
          + (f'; skipped {len(failed)}: {", ".join(failed)}' if failed else ''), flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    raise SystemExit(main())
