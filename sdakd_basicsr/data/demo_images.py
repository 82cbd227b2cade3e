"""Demo data from scikit-image's bundled images (no downloads).

Training set: 192x192 tiles of the bundled photographs and textures (grey ones as 3 channels), GT PNGs plus
``meta_info.txt`` and their x4 LR (MATLAB-style antialiased bicubic, basicsr's ``imresize``). The few bundled
colour photographs cover few hues (no saturated green or blue), and a student trained on them alone shifts
unseen colours (a green circuit board came out blue); so every colour tile is also written with its chroma
rotated by 120 and 240 degrees (luminance unchanged), listed with the originals in ``meta_info_demo.txt``
(``meta_info.txt`` keeps the originals only: the study's data). Held-out set: ``astronaut`` and the left
``stereo_motorcycle`` view, never trained on.
(CLI: ``python -m sdakd_basicsr.tools.demo_data --out datasets/demo``.)
"""
import os
from os import path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

from ..metrics.images import bicubic_lr

TRAIN_IMAGES = ('coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'hubble_deep_field', 'retina', 'colorwheel',
                'camera', 'brick', 'grass', 'gravel', 'moon', 'clock', 'coins')
HELD_OUT_IMAGES = ('astronaut', 'stereo_motorcycle')
SCALE = 4
HUE_ROTATIONS = (120, 240)  # degrees, for the colour tiles
DATA_VERSION = 2  # 2: recoloured tiles (an older datasets/demo is completed, not rebuilt)


def _load(name: str) -> np.ndarray:
    """An RGB uint8 image from skimage.data."""
    from skimage import data  # lazy: only the demo reads it (+0.5 s on every package import)
    img = getattr(data, name)()
    if isinstance(img, tuple):  # stereo pairs: the left view
        img = img[0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def _write(path: str, rgb: np.ndarray) -> None:
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def rotate_chroma(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """``rgb`` (uint8) with its colour rotated by ``degrees`` around the grey axis, luminance (BT.601) kept."""
    x = rgb.astype(np.float32)
    y = x @ np.array([0.299, 0.587, 0.114], np.float32)
    cb, cr = x[..., 2] - y, x[..., 0] - y
    t = np.deg2rad(degrees)
    cb, cr = cb * np.cos(t) - cr * np.sin(t), cb * np.sin(t) + cr * np.cos(t)
    r, b = y + cr, y + cb
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return np.clip(np.stack([r, g, b], -1).round(), 0, 255).astype(np.uint8)


def is_grey(rgb: np.ndarray, tolerance: float = 2.0) -> bool:
    x = rgb.astype(np.int16)
    return bool(np.abs(x[..., 0] - x[..., 1]).mean() < tolerance and np.abs(x[..., 2] - x[..., 1]).mean() < tolerance)


def tiles(img: np.ndarray, size: int) -> List[Tuple[int, int]]:
    h, w = img.shape[:2]
    return [(y, x) for y in range(0, h - size + 1, size) for x in range(0, w - size + 1, size)]


def prepare_demo_data(out: str, tile: int = 192) -> Dict[str, str]:
    """Write the demo data under ``out`` (skipped when already complete); return its folders."""
    folders = {k: osp.join(out, *k.split('_')) for k in ('train_gt', 'train_lq', 'heldout_gt', 'heldout_lq')}
    meta, meta_demo = osp.join(out, 'train', 'meta_info.txt'), osp.join(out, 'train', 'meta_info_demo.txt')
    done = osp.join(out, f'.complete_v{DATA_VERSION}')
    result = dict(folders, meta_info=meta, meta_info_demo=meta_demo)
    if osp.isfile(done):
        return result
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    lines, recoloured = [], []

    def write_pair(fname: str, crop: np.ndarray) -> str:
        _write(osp.join(folders['train_gt'], fname), crop)
        _write(osp.join(folders['train_lq'], fname), bicubic_lr(crop, SCALE))
        return f'{fname} ({tile},{tile},3)'
    for name in TRAIN_IMAGES:
        img = _load(name)
        for y, x in tiles(img, tile):
            crop = img[y:y + tile, x:x + tile]
            if crop.std() < 4:  # flat tiles (black sky, borders) teach nothing
                continue
            lines.append(write_pair(f'{name}_{y:04d}_{x:04d}.png', crop))
            if not is_grey(crop):
                for degrees in HUE_ROTATIONS:
                    recoloured.append(write_pair(f'{name}_{y:04d}_{x:04d}_hue{degrees}.png',
                                                 rotate_chroma(crop, degrees)))
    with open(meta, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(meta_demo, 'w') as f:
        f.write('\n'.join(lines + recoloured) + '\n')
    for name in HELD_OUT_IMAGES:
        img = _load(name)
        h, w = (d - d % SCALE for d in img.shape[:2])
        img = img[:h, :w]
        _write(osp.join(folders['heldout_gt'], f'{name}.png'), img)
        _write(osp.join(folders['heldout_lq'], f'{name}.png'), bicubic_lr(img, SCALE))
    open(done, 'w').close()
    return result
