"""Face data for GCFSR: scale-conditioned training pairs and a validation set of LR faces at any scale.

Training (``GCFSRFaceDataset``; also registered as ``FFHQ_control_Dataset``, the official name): read a GT
face (disk folder, optional ``meta_info``, or lmdb), random horizontal flip, draw ``scale`` from
``downsample_list``, make the LR by MATLAB-style bicubic down then up to the GT size, round to 8 bits, and
return ``lq`` and ``gt`` in [-1, 1] with the condition ``in_size = scale / cond_norm``.

Validation (``GCFSRFaceValDataset``): LR faces of any size; the scale is ``out_size / LR width`` (must be an
integer, and in ``scales`` when given), the LR is bicubic-upsampled to ``out_size``; GT is optional.
"""
import random
from os import path as osp
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
import torch
from torch.utils import data

from basicsr.utils import FileClient, imfrombytes, img2tensor
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.registry import DATASET_REGISTRY

from ..metrics.images import list_images


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWx3 BGR float [0, 1] -> 3xHxW RGB [-1, 1]."""
    return img2tensor([img], bgr2rgb=True, float32=True)[0] * 2 - 1


def degrade(gt: np.ndarray, scale: int) -> np.ndarray:
    """Bicubic (antialiased) down by ``scale`` and back up to the GT size, rounded to 8 bits."""
    lq = imresize(imresize(gt, 1 / scale), scale)
    h, w = gt.shape[:2]
    lq = lq[:h, :w]
    return np.clip(np.round(lq * 255), 0, 255) / 255.


@DATASET_REGISTRY.register()
class GCFSRFaceDataset(data.Dataset):

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.file_client = None
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.scales = [int(s) for s in opt.get('downsample_list', [32, 32, 32, 32, 16, 16, 8, 8, 4])]
        if not self.scales or any(s < 1 for s in self.scales):
            raise ValueError(f'downsample_list must hold positive integers, got {opt.get("downsample_list")}')
        self.cond_norm = float(opt.get('cond_norm', 32.))
        self.out_size = opt.get('out_size')
        folder = opt['dataroot_gt']
        if self.io_backend_opt['type'] == 'lmdb':
            self.io_backend_opt.update(db_paths=[folder], client_keys=['gt'])
            with open(osp.join(folder, 'meta_info.txt')) as f:
                self.paths = [line.split('.')[0] for line in f if line.strip()]
        elif opt.get('meta_info'):
            with open(opt['meta_info']) as f:
                self.paths = [osp.join(folder, line.split(' ')[0]) for line in f if line.strip()]
        else:
            self.paths = list_images(folder, 'dataroot_gt')

    def __getitem__(self, index: int) -> Dict:
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop('type'), **self.io_backend_opt)
        path = self.paths[index]
        gt = imfrombytes(self.file_client.get(path, 'gt'), float32=True)
        if self.out_size and gt.shape[:2] != (self.out_size, self.out_size):
            gt = cv2.resize(gt, (self.out_size, self.out_size), interpolation=cv2.INTER_AREA)
        if self.opt.get('use_hflip', True) and random.random() < 0.5:
            gt = cv2.flip(gt, 1)
        scale = random.choice(self.scales)
        lq = degrade(gt, scale)
        return {'lq': _to_tensor(lq.astype(np.float32)), 'gt': _to_tensor(gt),
                'in_size': torch.tensor([scale / self.cond_norm], dtype=torch.float32), 'gt_path': path,
                'lq_path': path}

    def __len__(self) -> int:
        return len(self.paths)


@DATASET_REGISTRY.register()
class FFHQ_control_Dataset(GCFSRFaceDataset):  # noqa: N801  (the official name, for official option files)
    pass


@DATASET_REGISTRY.register()
class GCFSRFaceValDataset(data.Dataset):
    """Options: dataroot_lq, optional dataroot_gt (same file names), out_size, cond_norm, optional scales."""

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.out_size = int(opt['out_size'])
        self.cond_norm = float(opt.get('cond_norm', 32.))
        self.allowed: Optional[Sequence[int]] = opt.get('scales')
        self.lq_paths = list_images(opt['dataroot_lq'], 'dataroot_lq')
        self.gt_folder = opt.get('dataroot_gt')

    def scale_of(self, path: str, width: int) -> int:
        scale = self.out_size / width
        if scale != int(scale) or (self.allowed and int(scale) not in self.allowed):
            allowed = f' (allowed: {list(self.allowed)})' if self.allowed else ''
            raise ValueError(f'{path}: LR width {width} gives scale {scale:g} for out_size {self.out_size}; '
                             f'expected an integer scale{allowed}')
        return int(scale)

    def __getitem__(self, index: int) -> Dict:
        path = self.lq_paths[index]
        lr = cv2.imread(path, cv2.IMREAD_COLOR).astype(np.float32) / 255.
        scale = self.scale_of(path, lr.shape[1])
        lq = np.clip(imresize(lr, scale), 0, 1)[:self.out_size, :self.out_size]
        item = {'lq': _to_tensor(lq.astype(np.float32)), 'lq_path': path,
                'in_size': torch.tensor([scale / self.cond_norm], dtype=torch.float32)}
        if self.gt_folder:
            gt_path = osp.join(self.gt_folder, osp.basename(path))
            gt = cv2.imread(gt_path, cv2.IMREAD_COLOR)
            if gt is None:
                raise FileNotFoundError(f'dataroot_gt: no GT for {path} at {gt_path}')
            item.update(gt=_to_tensor(gt.astype(np.float32) / 255.), gt_path=gt_path)
        return item

    def __len__(self) -> int:
        return len(self.lq_paths)
