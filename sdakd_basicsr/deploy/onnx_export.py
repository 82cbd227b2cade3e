"""ONNX export of single-input students (dynamic batch, height and width) and an ONNX Runtime parity check
(CLI: ``python -m sdakd_basicsr.tools.export``)."""
import os
from os import path as osp
from typing import List, Optional, Tuple

import cv2
import numpy as np
import torch
from torch import nn

from ..archs.generator_call import family_of
from ..checkpoints import EMA_FIRST, load_generator


def student_from_options(opt: dict, checkpoint: Optional[str] = None, param_key: Optional[str] = None) -> nn.Module:
    """The student of an option file (``network_g``) with weights from ``checkpoint`` or path.pretrain_network_g."""
    spec = opt['network_g']
    family_of(spec).check_exportable('export')
    path_opt = opt.get('path') or {}
    checkpoint = checkpoint or path_opt.get('pretrain_network_g')
    if not checkpoint:
        raise KeyError('export: no weights: give --checkpoint or set path.pretrain_network_g in the option file')
    param_key = param_key or path_opt.get('param_key_g', EMA_FIRST)
    return load_generator(spec, checkpoint, param_key, 'cpu', what='export')


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
    from skimage import data  # lazy: only the parity check reads it (+0.5 s)
    gt = data.astronaut()[:384, 64:448].astype(np.float32) / 255.
    lr = cv2.resize(gt, (96, 96), interpolation=cv2.INTER_CUBIC)
    return np.clip(lr, 0, 1).transpose(2, 0, 1)[None].copy()


def check_parity(net: nn.Module, onnx_path: str, image: np.ndarray) -> List[Tuple[str, float]]:
    """PSNR between ONNX Runtime and PyTorch on ``image`` and on a differently shaped crop of it."""
    import onnxruntime as ort  # lazy: optional (extra `export`)
    session = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    results = []
    family = family_of(net)
    multiple = family.input_multiple(getattr(net, family.scale_key, 4))  # RRDBNet x2/x1 unshuffle their input
    h, w = image.shape[2] - 5, image.shape[3] - 3
    crop = image[:, :, :h - h % multiple, :w - w % multiple]
    for name, x in (('image', image), ('other-sized crop', crop)):
        x = np.ascontiguousarray(x, dtype=np.float32)
        onnx_out = session.run(None, {'lr': x})[0]
        with torch.no_grad():
            torch_out = net(torch.from_numpy(x)).numpy()
        if onnx_out.shape != torch_out.shape:
            raise RuntimeError(f'ONNX output {onnx_out.shape} != PyTorch output {torch_out.shape} on the {name}')
        results.append((f'{name} {x.shape[2]}x{x.shape[3]}', psnr(onnx_out, torch_out)))
    return results
