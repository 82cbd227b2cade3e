"""Export a trained student generator to ONNX (dynamic batch, height and width) and check it.

    python -m sdakd_basicsr.tools.export -opt options/test/test_sdakd_student_x4_w0.5.yml \
        --out experiments/student_x4.onnx
    python -m sdakd_basicsr.tools.export -opt <option file> --checkpoint net_g_latest.pth --param-key params_ema \\
        --out student.onnx --image some_lr.png

The architecture comes from the option file's ``network_g`` and the weights from ``path.pretrain_network_g``
(or ``--checkpoint``). With onnxruntime installed (``pip install onnxruntime``, part of `make install`), the
exported graph is run on an LR image (``--image``, default: a crop of scikit-image's astronaut, bicubic x1/4)
and on a second input size, and compared with PyTorch: the export fails below ``--min-psnr`` (50 dB).
Single-input generators only (RRDBNet and other BasicSR SR networks); GCFSR's condition and noise inputs
are not exported.
"""
import argparse
import importlib.util
from typing import List, Optional

import cv2
import numpy as np

import sdakd_basicsr  # noqa: F401  (registration)
from sdakd_basicsr.deploy.onnx_export import check_parity, default_image, export_onnx, student_from_options
from sdakd_basicsr.distill.option_file import read_option_file


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='option file with network_g (a stage or test file)')
    parser.add_argument('--checkpoint', help='weights (default: path.pretrain_network_g)')
    parser.add_argument('--param-key', help='key in the checkpoint (default: path.param_key_g or params_ema)')
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--image', help='an LR image for the parity check (default: an astronaut crop)')
    parser.add_argument('--min-psnr', type=float, default=50.0)
    args = parser.parse_args(argv)
    opt = read_option_file(args.opt)
    net = student_from_options(opt, args.checkpoint, args.param_key)
    export_onnx(net, args.out, args.opset)
    print(f'exported {opt["network_g"]["type"]} -> {args.out} (dynamic batch/height/width, opset {args.opset})')
    if importlib.util.find_spec('onnxruntime') is None:
        print('parity NOT checked: onnxruntime is not installed (pip install onnxruntime)')
        return 0
    if args.image:
        img = cv2.imread(args.image, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f'--image: cannot read {args.image}')
        image = (img[..., ::-1].astype(np.float32) / 255.).transpose(2, 0, 1)[None].copy()
    else:
        image = default_image()
    results = check_parity(net, args.out, image)
    for name, value in results:
        print(f'parity on {name}: PSNR(ONNX Runtime, PyTorch) = {value:.1f} dB')
    worst = min(v for _, v in results)
    if worst < args.min_psnr:
        print(f'FAILED: parity {worst:.1f} dB is below {args.min_psnr} dB')
        return 1
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
