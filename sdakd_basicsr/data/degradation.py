"""Real-ESRGAN's second-order degradation of one GT image, seeded: the degraded LR a teacher cache stores and
every evaluation measures on.

The synthesis is basicsr's own (``RealESRGANModel.feed_data`` with blur kernels drawn as ``RealESRGANDataset``
draws them; like Real-ESRGAN it degrades the USM-sharpened GT), run on one image outside training; the settings
are Real-ESRGAN x4plus's (``degradation_presets``) with any key overridden. basicsr draws from Python's, NumPy's
and torch's global random generators: ``seeded`` sets all three for one image and restores them afterwards, so a
training run that builds or reads degraded images keeps its own random sequence.
"""
import os
import random
import zlib
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from basicsr.models.realesrgan_model import RealESRGANModel
from basicsr.utils import DiffJPEG, USMSharp

from ..metrics.images import bicubic_lr, to_image, to_tensor
from .degradation_presets import kernel_defaults, realesrgan_x4plus_options, synthesis_defaults
from .realesrgan_crop_dataset import RealESRGANCropDataset

# the keys a degradation block may override: the synthesis keys and the blur-kernel keys, with x4plus's values
DEGRADATION_KEYS = tuple(synthesis_defaults()) + tuple(kernel_defaults())
# the usm flags are training targets, not part of making the LR
_NOT_DEGRADATION = ('l1_gt_usm', 'percep_gt_usm', 'gan_gt_usm')


def degradation_settings(overrides: Optional[dict] = None) -> Dict:
    """Real-ESRGAN x4plus's degradation settings with ``overrides`` applied (the full dict a cache records)."""
    overrides = dict(overrides or {})
    unknown = sorted(k for k in overrides if k not in DEGRADATION_KEYS or k in _NOT_DEGRADATION)
    if unknown:
        raise KeyError(f'degradation setting {unknown[0]!r} is not a Real-ESRGAN degradation key; valid keys: '
                       f'{sorted(k for k in DEGRADATION_KEYS if k not in _NOT_DEGRADATION)}')
    settings = {k: v for k, v in dict(synthesis_defaults(), **kernel_defaults()).items() if k not in _NOT_DEGRADATION}
    settings.update(overrides)
    return settings


def variant_seed(seed: int, name: str, variant: int) -> int:
    """The seed of one degraded variant of one image: stable across runs, machines and image order (a new image
    in the set changes no other image's variants)."""
    return zlib.crc32(f'{seed}/{name}/{variant}'.encode()) & 0x7FFFFFFF


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Python's, NumPy's and torch's global generators set to ``seed`` inside, restored on leaving."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


class _SynthesisHost:
    """The attributes basicsr's Real-ESRGAN synthesis (``RealESRGANModel.feed_data``) reads, without a model."""

    def __init__(self, opt: dict) -> None:
        self.opt, self.is_train, self.device = opt, True, torch.device('cpu')
        self.jpeger, self._usm, self._sharpened = DiffJPEG(differentiable=False), USMSharp(), False

    def usm_sharpener(self, gt: torch.Tensor) -> torch.Tensor:
        """basicsr degrades the USM-sharpened GT (its first call), then sharpens the cropped GT again for the
        training targets (its second call), which the LR does not need: a 51x51 filter skipped, 1/3 of the time."""
        if self._sharpened:
            return gt
        self._sharpened = True
        return self._usm(gt)

    def _dequeue_and_enqueue(self) -> None:  # one image at a time: no training-pair pool
        pass


class RealESRGANDegrader:
    """Degrades GT images (RGB uint8) into x``scale`` LR images with basicsr's second-order pipeline."""

    def __init__(self, settings: Optional[dict] = None, scale: int = 4) -> None:
        self.settings = degradation_settings(settings)
        self.scale = scale
        base = realesrgan_x4plus_options()
        kernel_keys = {k: v for k, v in self.settings.items() if k in kernel_defaults()}
        # only its kernel draws are used: an empty file list, no GT folder is read
        self._kernels = RealESRGANCropDataset(dict(base['datasets']['train'], **kernel_keys, dataroot_gt='',
                                                   meta_info=os.devnull, phase='train', scale=scale))
        self._opt = dict(base, **{k: v for k, v in self.settings.items() if k in synthesis_defaults()},
                         scale=scale, high_order_degradation=True)
        self._opt.pop('datasets')
        # the second blur runs on the GT scaled by as little as resize_range[0]: it must stay wider than the
        # kernel's half-width, which basicsr's reflect padding needs (Real-ESRGAN pads every GT to 400 first)
        half_kernel = max(self.settings['blur_kernel_size'], self.settings['blur_kernel_size2'], 21) // 2 + 1
        side = int(np.ceil(half_kernel / min(self.settings['resize_range'][0], 1.0))) + 1
        self.min_side = side + (-side) % scale

    def __call__(self, gt: np.ndarray, seed: int) -> Tuple[np.ndarray, np.ndarray]:
        """(LR, GT) for one GT image, reproducible from ``seed``; the GT is cut to a multiple of the scale and the LR
        is exactly GT / scale. basicsr's synthesis ends with a square crop, and its blurs need an image larger than
        their kernel after the first downscale: a non-square or small image is reflected out to a square of at least
        ``min_side`` first and its LR cut back, so the whole image is degraded."""
        s = self.scale
        gt = gt[:gt.shape[0] - gt.shape[0] % s, :gt.shape[1] - gt.shape[1] % s]
        h, w = gt.shape[:2]
        side = max(h, w, self.min_side)
        square = np.pad(gt, ((0, side - h), (0, side - w), (0, 0)), mode='symmetric') if (h, w) != (side, side) else gt
        with seeded(seed), torch.no_grad():
            kernels = {k: v[None] for k, v in self._kernels.sample_kernels().items()}
            host = _SynthesisHost(dict(self._opt, gt_size=side))
            RealESRGANModel.feed_data(host, {'gt': to_tensor(square), **kernels})
        return to_image(host.lq)[:h // s, :w // s], gt


LR_KINDS = ('bicubic', 'realesrgan')  # what every evaluation measures: clean bicubic LR and degraded LR
LR_KIND_LABELS = {'bicubic': 'clean bicubic LR', 'realesrgan': 'Real-ESRGAN-degraded LR'}


def make_pairs(gt_images: Sequence[Tuple[str, np.ndarray]], kind: str, seed: int = 0,
               scale: int = 4) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """(name, LR, GT) for each (name, GT) of ``gt_images``: ``bicubic`` (MATLAB-style x1/scale) or ``realesrgan``
    (x4plus's second-order degradation, image i seeded with ``seed + i``); GT cut to a multiple of the scale."""
    if kind not in LR_KINDS:
        raise ValueError(f'LR kind must be one of {LR_KINDS}, got {kind!r}')
    degrader = RealESRGANDegrader(scale=scale) if kind == 'realesrgan' else None
    pairs = []
    for i, (name, gt) in enumerate(gt_images):
        gt = gt[:gt.shape[0] - gt.shape[0] % scale, :gt.shape[1] - gt.shape[1] % scale]
        lr, gt = degrader(gt, seed + i) if degrader else (bicubic_lr(gt, scale), gt)
        pairs.append((name, lr, gt))
    return pairs
