"""Image helpers for the evaluation tools: read, convert, downscale, and lay out comparison crops."""
import glob
import os
from os import path as osp
from typing import List, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from basicsr.utils.matlab_functions import imresize

# image files every reader here accepts (OpenCV and PIL read them all): the one list, for data, checks and tools
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm')


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str, key: str) -> List[str]:
    """The image files of ``folder`` (sorted full paths); ``key`` (the option or flag that names the folder)
    is named when the folder is missing or holds no image."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{key}: folder not found: {folder}')
    paths = [osp.join(folder, n) for n in sorted(os.listdir(folder)) if is_image_file(n)]
    if not paths:
        raise FileNotFoundError(f'{key}: no images ({", ".join(IMAGE_EXTENSIONS)}) in {folder}')
    return paths


def read_rgb(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_tensor(rgb: np.ndarray, device='cpu') -> Tensor:
    return torch.from_numpy(rgb.astype(np.float32) / 255.).permute(2, 0, 1)[None].to(device)


def to_image(t: Tensor) -> np.ndarray:
    """1x3xHxW RGB [0, 1] -> HxWx3 uint8 RGB."""
    return (t[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def bicubic_lr(rgb: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-style bicubic downscaling by ``scale`` of an HxWx3 uint8 image, rounded back to uint8."""
    return np.clip(np.round(imresize(rgb.astype(np.float32) / 255., 1 / scale) * 255), 0, 255).astype(np.uint8)


def read_pairs(gt_dir: str, lr_dir: str) -> List[tuple]:
    """[(name, lr_rgb, gt_rgb)] for every PNG of ``gt_dir`` with its namesake in ``lr_dir``."""
    pairs = []
    for gt_path in sorted(glob.glob(osp.join(gt_dir, '*.png'))):
        name = osp.basename(gt_path)
        pairs.append((name, read_rgb(osp.join(lr_dir, name)), read_rgb(gt_path)))
    return pairs


def comparison_grid(panels: Sequence[tuple], path: str, label_height: int = 22) -> None:
    """Side-by-side crops with a label above each: ``panels`` = [(label, rgb uint8), ...] (same size)."""
    h, w = panels[0][1].shape[:2]
    tiles = []
    for label, img in panels:
        canvas = np.full((h + label_height, w, 3), 255, np.uint8)
        canvas[label_height:] = img
        cv2.putText(canvas, label, (4, label_height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(canvas)
        tiles.append(np.full((h + label_height, 4, 3), 255, np.uint8))
    cv2.imwrite(path, cv2.cvtColor(np.concatenate(tiles[:-1], axis=1), cv2.COLOR_RGB2BGR))
