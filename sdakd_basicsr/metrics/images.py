"""Image helpers for the evaluation tools: read, convert, downscale, and lay out comparison crops."""
import os
from os import path as osp
from typing import List, Sequence, Tuple

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


def check_output_folder(path: str, flag: str, create: bool = True) -> str:
    """``path`` as a folder the tools can write into (made when ``create``), or an error naming ``flag`` and the
    path: a file in the way, or a folder (or its nearest existing parent) that is not writable."""
    if osp.exists(path) and not osp.isdir(path):
        raise NotADirectoryError(f'{flag} {path}: is a file, not a folder; give a folder for the outputs')
    parent = osp.abspath(path)
    while not osp.exists(parent):
        parent = osp.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f'{flag} {path}: {parent} is not writable')
    if create:
        os.makedirs(path, exist_ok=True)
    return path


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


def _grid_row(panels: Sequence[tuple], label_height: int) -> np.ndarray:
    h, w = panels[0][1].shape[:2]
    tiles = []
    for label, img in panels:
        canvas = np.full((h + label_height, w, 3), 255, np.uint8)
        canvas[label_height:] = img
        cv2.putText(canvas, label, (4, label_height - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(canvas)
        tiles.append(np.full((h + label_height, 4, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def comparison_grid(panels: Sequence[tuple], path: str, label_height: int = 22) -> None:
    """Side-by-side crops with a label above each: ``panels`` = [(label, rgb uint8), ...] (same size)."""
    comparison_rows([panels], path, label_height)


def comparison_rows(rows: Sequence[Sequence[tuple]], path: str, label_height: int = 22) -> None:
    """Rows of labelled crops (``comparison_grid`` rows), one above the other, padded to the widest row."""
    canvases = [_grid_row(panels, label_height) for panels in rows]
    width = max(c.shape[1] for c in canvases)
    gap = np.full((6, width, 3), 255, np.uint8)
    stacked = []
    for c in canvases:
        stacked += [np.pad(c, ((0, 0), (0, width - c.shape[1]), (0, 0)), constant_values=255), gap]
    cv2.imwrite(path, cv2.cvtColor(np.concatenate(stacked[:-1], axis=0), cv2.COLOR_RGB2BGR))


def detail_window(rgb: np.ndarray, size: int, multiple: int = 1) -> Tuple[int, int]:
    """(top, left) of the ``size`` x ``size`` window of ``rgb`` with the most fine detail (mean absolute Laplacian
    of the luminance), on a grid of quarter-window steps; both multiples of ``multiple`` (the scale, so that the
    window maps onto the LR). A picture cropped there shows what a generator does to texture and edges, not to
    flat sky."""
    h, w = rgb.shape[:2]
    size = min(size, h, w)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    detail = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    integral = cv2.integral(detail)
    step = max(multiple, size // 4 - size // 4 % multiple)
    best, where = -1.0, (0, 0)
    for top in range(0, h - size + 1, step):
        for left in range(0, w - size + 1, step):
            total = (integral[top + size, left + size] - integral[top, left + size] - integral[top + size, left]
                     + integral[top, left])
            if total > best:
                best, where = total, (top, left)
    return where
