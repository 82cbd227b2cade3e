"""Demo data from scikit-image's bundled images (no downloads).

Training set: 192x192 tiles of the bundled photographs and textures (grey ones as 3 channels), GT PNGs plus
``meta_info.txt`` and their x4 LR (MATLAB-style antialiased bicubic, basicsr's ``imresize``). Held-out set:
``astronaut`` and the left ``stereo_motorcycle`` view, never trained on.
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


def _load(name: str) -> np.ndarray:
    """An RGB uint8 image from skimage.data."""
    from skimage import data
    img = getattr(data, name)()
    if isinstance(img, tuple):  # stereo pairs: the left view
        img = img[0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def _write(path: str, rgb: np.ndarray) -> None:
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def tiles(img: np.ndarray, size: int) -> List[Tuple[int, int]]:
    h, w = img.shape[:2]
    return [(y, x) for y in range(0, h - size + 1, size) for x in range(0, w - size + 1, size)]


def prepare_demo_data(out: str, tile: int = 192) -> Dict[str, str]:
    """Write the demo data under ``out`` (skipped when already complete); return its folders."""
    folders = {k: osp.join(out, *k.split('_')) for k in ('train_gt', 'train_lq', 'heldout_gt', 'heldout_lq')}
    meta = osp.join(out, 'train', 'meta_info.txt')
    done = osp.join(out, '.complete')
    if osp.isfile(done):
        return dict(folders, meta_info=meta)
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    lines = []
    for name in TRAIN_IMAGES:
        img = _load(name)
        for y, x in tiles(img, tile):
            crop = img[y:y + tile, x:x + tile]
            if crop.std() < 4:  # flat tiles (black sky, borders) teach nothing
                continue
            fname = f'{name}_{y:04d}_{x:04d}.png'
            _write(osp.join(folders['train_gt'], fname), crop)
            _write(osp.join(folders['train_lq'], fname), bicubic_lr(crop, SCALE))
            lines.append(f'{fname} ({tile},{tile},3)')
    with open(meta, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    for name in HELD_OUT_IMAGES:
        img = _load(name)
        h, w = (d - d % SCALE for d in img.shape[:2])
        img = img[:h, :w]
        _write(osp.join(folders['heldout_gt'], f'{name}.png'), img)
        _write(osp.join(folders['heldout_lq'], f'{name}.png'), bicubic_lr(img, SCALE))
    open(done, 'w').close()
    return dict(folders, meta_info=meta)
