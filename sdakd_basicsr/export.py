"""Export a trained student generator to ONNX (dynamic batch, height and width) and check it.

    python -m sdakd_basicsr.export -opt options/test/test_sdakd_student_x4_w0.5.yml --out experiments/student_x4.onnx
    python -m sdakd_basicsr.export -opt <option file> --checkpoint net_g_latest.pth --param-key params_ema \\
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
import os
from os import path as osp
from typing import List, Optional, Tuple

import numpy as np
import torch
import yaml
from torch import nn

import sdakd_basicsr  # noqa: F401  (registration)
from basicsr.archs import build_network


def load_generator(opt: dict, checkpoint: Optional[str] = None, param_key: Optional[str] = None) -> nn.Module:
    spec = opt['network_g']
    if spec['type'] in ('GCFSR', 'GCFSR_blind'):
        raise ValueError('export: GCFSR takes a scale condition and a noise list; only single-input generators '
                         '(e.g. RRDBNet) are exported')
    path_opt = opt.get('path') or {}
    checkpoint = checkpoint or path_opt.get('pretrain_network_g')
    if not checkpoint:
        raise KeyError('export: no weights: give --checkpoint or set path.pretrain_network_g in the option file')
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'export: checkpoint not found: {checkpoint}')
    param_key = param_key or path_opt.get('param_key_g', 'params_ema')
    state = torch.load(checkpoint, map_location='cpu')
    if param_key not in state:
        raise KeyError(f'export: {checkpoint} has no {param_key!r} entry (its keys: {sorted(state)[:6]})')
    net = build_network(spec)
    net.load_state_dict(state[param_key], strict=True)
    return net.eval()


def export_onnx(net: nn.Module, out: str, opset: int = 17, sample_size: int = 32) -> None:
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    x = torch.rand(1, 3, sample_size, sample_size)
    torch.onnx.export(net, (x, ), out, input_names=['lr'], output_names=['sr'], opset_version=opset, dynamo=False,
                      dynamic_axes={'lr': {0: 'batch', 2: 'height', 3: 'width'},
                                    'sr': {0: 'batch', 2: 'out_height', 3: 'out_width'}})


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1))**2))
    return float('inf') if mse == 0 else 10 * np.log10(1 / mse)


def default_image() -> np.ndarray:
    """A 96x96 LR crop (bicubic x1/4 of scikit-image's astronaut), RGB [0, 1], 1x3xHxW."""
    import cv2
    from skimage import data
    gt = data.astronaut()[:384, 64:448].astype(np.float32) / 255.
    lr = cv2.resize(gt, (96, 96), interpolation=cv2.INTER_CUBIC)
    return np.clip(lr, 0, 1).transpose(2, 0, 1)[None].copy()


def check_parity(net: nn.Module, onnx_path: str, image: np.ndarray) -> List[Tuple[str, float]]:
    """PSNR between ONNX Runtime and PyTorch on ``image`` and on a differently shaped crop of it."""
    import onnxruntime as ort
    session = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    results = []
    for name, x in (('image', image), ('odd-sized crop', image[:, :, :image.shape[2] - 5, :image.shape[3] - 3])):
        x = np.ascontiguousarray(x, dtype=np.float32)
        onnx_out = session.run(None, {'lr': x})[0]
        with torch.no_grad():
            torch_out = net(torch.from_numpy(x)).numpy()
        if onnx_out.shape != torch_out.shape:
            raise RuntimeError(f'ONNX output {onnx_out.shape} != PyTorch output {torch_out.shape} on the {name}')
        results.append((f'{name} {x.shape[2]}x{x.shape[3]}', psnr(onnx_out, torch_out)))
    return results


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
    with open(args.opt, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    net = load_generator(opt, args.checkpoint, args.param_key)
    export_onnx(net, args.out, args.opset)
    print(f'exported {opt["network_g"]["type"]} -> {args.out} (dynamic batch/height/width, opset {args.opset})')
    if importlib.util.find_spec('onnxruntime') is None:
        print('parity NOT checked: onnxruntime is not installed (pip install onnxruntime)')
        return 0
    if args.image:
        import cv2
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
