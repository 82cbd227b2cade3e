"""Upscaling images with a trained generator, as Real-ESRGAN's inference does it (same padding, tiling, alpha,
grayscale and 16-bit handling and the same output), without needing the realesrgan package.

``load_upscaler(path)`` reads a checkpoint (BasicSR's ``params_ema``/``params``, a raw state dict, or a release
folder) and builds the generator it describes (RRDBNet or SRVGGNetCompact): architecture, widths, depth and
scale are read from the weights, so no ``num_feat`` flags are needed. ``upscale(net, scale, img, ...)`` takes and
returns an image as OpenCV reads and writes it (BGR/BGRA/gray, uint8 or uint16).
"""
import glob
from os import path as osp
from typing import Optional, Tuple

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..archs.generator_call import build_generator, family_of, rrdbnet_input_multiple, spec_from_state
from ..checkpoints import read_checkpoint


def checkpoint_file(model: str, what: str = '--model') -> str:
    """A checkpoint file, or the single ``.pth`` of a release folder (``what``: the flag that named it)."""
    if osp.isdir(model):
        files = sorted(glob.glob(osp.join(model, '*.pth')))
        if len(files) != 1:
            raise FileNotFoundError(f'{what} {model}: a release folder holds exactly one .pth file; found {files}')
        return files[0]
    if not osp.isfile(model):
        raise FileNotFoundError(f'{what}: no such file or folder: {model}')
    return model


def load_upscaler(model: str, device: str = 'cpu', half: bool = False,
                  what: str = '--model') -> Tuple[nn.Module, int, dict]:
    """(network in eval mode, scale, its option dict) from a checkpoint or release folder. Real-ESRGAN's key
    choice: ``params_ema`` when present, else ``params``, else a raw state dict."""
    path = checkpoint_file(model, what)
    state = read_checkpoint(path, what)
    params = state.get('params_ema', state.get('params', state))
    spec = spec_from_state(params, f'{what} {path}')
    scale = family_of(spec).scale_of(spec)
    net = build_generator(spec)
    net.load_state_dict(params, strict=True)
    net = net.to(device).eval()
    return (net.half() if half else net), scale, spec


def _pad(x: Tensor, pre_pad: int, scale: int, multiple: int) -> Tuple[Tensor, int, int]:
    """Reflect-pad right/bottom by ``pre_pad``, then up to a multiple of the pixel-unshuffle factor."""
    if pre_pad:
        x = F.pad(x, (0, pre_pad, 0, pre_pad), 'reflect')
    pad_h = pad_w = 0
    if multiple > 1:
        pad_h, pad_w = -x.shape[2] % multiple, -x.shape[3] % multiple
        x = F.pad(x, (0, pad_w, 0, pad_h), 'reflect')
    return x, pad_h, pad_w


def _run_tiles(net: nn.Module, x: Tensor, scale: int, tile: int, tile_pad: int) -> Tensor:
    """Each ``tile`` x ``tile`` block with ``tile_pad`` pixels of context; only the block itself is kept."""
    _, c, h, w = x.shape
    out = x.new_zeros((x.shape[0], c, h * scale, w * scale))
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0 = max(y0 - tile_pad, 0), max(x0 - tile_pad, 0)
            py1, px1 = min(y1 + tile_pad, h), min(x1 + tile_pad, w)
            result = net(x[:, :, py0:py1, px0:px1])
            oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                result[:, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
    return out


@torch.no_grad()
def _upscale_rgb(net: nn.Module, scale: int, rgb: np.ndarray, tile: int, tile_pad: int, pre_pad: int) -> np.ndarray:
    """HxWx3 float RGB in [0, 1] -> (H*scale)xWx3 float RGB in [0, 1]."""
    param = next(net.parameters())
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()[None].to(param.device, param.dtype)
    # RealESRGANer pads x2 inputs to a multiple of 2 (x1: 4) whatever the model is: byte-equal output needs the same
    x, pad_h, pad_w = _pad(x, pre_pad, scale, rrdbnet_input_multiple(scale))
    out = _run_tiles(net, x, scale, tile, tile_pad) if tile > 0 else net(x)
    h, w = out.shape[2:]
    out = out[:, :, :h - (pad_h + pre_pad) * scale, :w - (pad_w + pre_pad) * scale]
    return out[0].float().cpu().clamp_(0, 1).numpy().transpose(1, 2, 0)


def upscale(net: nn.Module, scale: int, img: np.ndarray, tile: int = 0, tile_pad: int = 10, pre_pad: int = 0,
            outscale: Optional[float] = None, alpha_upsampler: str = 'realesrgan') -> Tuple[np.ndarray, str]:
    """An image as ``cv2.imread(..., IMREAD_UNCHANGED)`` gives it -> (the upscaled image, 'L'/'RGB'/'RGBA').

    Gray images go through the network as three equal channels and come back gray; the alpha channel of a
    BGRA image is upscaled separately (by the network, or ``alpha_upsampler='bicubic'``: a plain resize);
    16-bit images (any value above 256) stay 16-bit. ``outscale`` resizes the result (Lanczos) to
    ``outscale`` times the input size.
    """
    h_in, w_in = img.shape[:2]
    max_range = 65535 if img.max() > 256 else 255
    img = img.astype(np.float32) / max_range
    alpha = None
    if img.ndim == 2:
        mode, rgb = 'L', cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        mode, rgb, alpha = 'RGBA', cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB), img[:, :, 3]
    else:
        mode, rgb = 'RGB', cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    args = (tile, tile_pad, pre_pad)
    out = cv2.cvtColor(_upscale_rgb(net, scale, rgb, *args), cv2.COLOR_RGB2BGR)
    if mode == 'L':
        out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    if alpha is not None:
        if alpha_upsampler == 'realesrgan':
            up = _upscale_rgb(net, scale, cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGB), *args)
            alpha_out = cv2.cvtColor(up[:, :, ::-1], cv2.COLOR_BGR2GRAY)
        else:  # Real-ESRGAN's "bicubic" alpha path resizes linearly
            alpha_out = cv2.resize(alpha, (alpha.shape[1] * scale, alpha.shape[0] * scale),
                                   interpolation=cv2.INTER_LINEAR)
        out = cv2.cvtColor(out, cv2.COLOR_BGR2BGRA)
        out[:, :, 3] = alpha_out
    out = (out * max_range).round().astype(np.uint16 if max_range == 65535 else np.uint8)
    if outscale is not None and outscale != float(scale):
        out = cv2.resize(out, (int(w_in * outscale), int(h_in * outscale)), interpolation=cv2.INTER_LANCZOS4)
    return out, mode
