"""Real-ESRGAN training data with a configurable crop/pad size.

basicsr's ``RealESRGANDataset`` pads or crops every GT image to a hard-coded 400x400 before the
degradation synthesis (which then runs on 400x400 tensors: ~0.35 s per image on CPU). This dataset takes
the same options plus ``crop_pad_size`` (default 400, the stock behaviour) and, for the disk backend,
lists the GT folder itself when ``meta_info`` is not given.
"""
import math
import os
import random
from typing import Dict, Sequence

import cv2
import numpy as np
import torch

from basicsr.data.degradations import circular_lowpass_kernel, random_mixed_kernels
from basicsr.data.realesrgan_dataset import RealESRGANDataset
from basicsr.data.transforms import augment
from basicsr.utils import FileClient, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY

from ..metrics.images import list_images

KERNEL_PAD = 21  # every kernel is zero-padded to 21x21 so that a batch stacks


@DATASET_REGISTRY.register()
class RealESRGANCropDataset(RealESRGANDataset):

    def __init__(self, opt: dict) -> None:
        if opt['io_backend']['type'] != 'lmdb' and not opt.get('meta_info'):
            # list the folder ourselves; basicsr's class reads meta_info unconditionally
            self._listed = list_images(opt['dataroot_gt'], 'datasets.train.dataroot_gt')
            opt = dict(opt, meta_info=os.devnull)
        super().__init__(opt)
        if hasattr(self, '_listed'):
            self.paths = self._listed
        self.crop_pad_size = int(opt.get('crop_pad_size', 400))

    def _kernel(self, kernel_list: Sequence[str], kernel_prob: Sequence[float], sigma: Sequence[float],
                betag: Sequence[float], betap: Sequence[float], sinc_prob: float) -> torch.Tensor:
        size = random.choice(self.kernel_range)
        if np.random.uniform() < sinc_prob:
            # small kernels get a higher cut-off so that they do not ring
            omega_c = np.random.uniform(np.pi / 3 if size < 13 else np.pi / 5, np.pi)
            kernel = circular_lowpass_kernel(omega_c, size, pad_to=False)
        else:
            kernel = random_mixed_kernels(kernel_list, kernel_prob, size, sigma, sigma, [-math.pi, math.pi], betag,
                                          betap, noise_range=None)
        pad = (KERNEL_PAD - size) // 2
        return torch.FloatTensor(np.pad(kernel, ((pad, pad), (pad, pad))))

    def _crop_or_pad(self, img: np.ndarray) -> np.ndarray:
        size = self.crop_pad_size
        h, w = img.shape[:2]
        if h < size or w < size:
            img = cv2.copyMakeBorder(img, 0, max(0, size - h), 0, max(0, size - w), cv2.BORDER_REFLECT_101)
        h, w = img.shape[:2]
        top, left = random.randint(0, h - size), random.randint(0, w - size)
        return img[top:top + size, left:left + size, ...]

    def sample_kernels(self) -> Dict[str, torch.Tensor]:
        """The first and second blur kernels and the final sinc filter of one degradation."""
        o = self.opt
        kernel1 = self._kernel(self.kernel_list, self.kernel_prob, self.blur_sigma, self.betag_range,
                               self.betap_range, o['sinc_prob'])
        kernel2 = self._kernel(self.kernel_list2, self.kernel_prob2, self.blur_sigma2, self.betag_range2,
                               self.betap_range2, o['sinc_prob2'])
        if np.random.uniform() < o['final_sinc_prob']:
            size = random.choice(self.kernel_range)
            sinc = torch.FloatTensor(circular_lowpass_kernel(np.random.uniform(np.pi / 3, np.pi), size,
                                                             pad_to=KERNEL_PAD))
        else:
            sinc = self.pulse_tensor
        return {'kernel1': kernel1, 'kernel2': kernel2, 'sinc_kernel': sinc}

    def __getitem__(self, index: int) -> Dict:
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop('type'), **self.io_backend_opt)
        gt_path = self.paths[index]
        img_gt = imfrombytes(self.file_client.get(gt_path, 'gt'), float32=True)
        img_gt = augment(img_gt, self.opt['use_hflip'], self.opt['use_rot'])
        img_gt = self._crop_or_pad(img_gt)
        gt = img2tensor([img_gt], bgr2rgb=True, float32=True)[0]
        return {'gt': gt, 'gt_path': gt_path, **self.sample_kernels()}
