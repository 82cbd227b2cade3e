"""Losses that reward the teacher's texture without ImageNet weights (docs/method.md, "Texture terms").

Plain L1 to the teacher's output pays twice for a texture detail the small student places a pixel off and once
for leaving it out, so a student trained on it alone learns the blurred mean (measured: high-frequency energy 0.3-0.5
of the teacher's). Each loss here compares something that survives a small misplacement:

- ``WaveletBandLoss``: the Haar detail bands (LH, HL, HH) of every level, with the low band left out or down-weighted
  (after Wavelet Knowledge Distillation, Zhang et al., CVPR 2022);
- ``FourierAmplitudeLoss``: the amplitude spectrum, which is blind to where in the patch a frequency sits (after
  Fuoli et al., "Fourier Space Losses", ICCV 2021);
- ``PatchSWDLoss``: the distribution of small multi-scale patches, compared by sliced Wasserstein distance with
  random projections (after Amir & Weiss, CVPR 2021, and GPDM, Elnekave & Weiss, CVPR 2022);
- ``FeatureMatchLoss``: the teacher discriminator's intermediate features of the student's output against those of
  the teacher's output (after DCD, Hu et al., CVPR 2023); the features are recorded by ``models/d_features.py``;
- ``ArtifactGuardLoss``: LDL's locally weighted residual (Liang et al., CVPR 2022): where the student is less
  stable than its EMA and its residual varies strongly, the pixel loss is raised - an artifact guard for an
  adversarial tail.

All take ``(pred, target)`` as basicsr's losses do (``ArtifactGuardLoss`` also the EMA's output) and return
``loss_weight`` times the loss; which target (the teacher's output or the GT) is the option key's ``target``, read
by ``models/generator_objective.py``.
"""
import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from basicsr.utils.registry import LOSS_REGISTRY

_CRITERIA = {'l1': F.l1_loss, 'mse': F.mse_loss, 'charbonnier': None}


def _criterion(name: str, owner: str):
    if name not in _CRITERIA:
        raise ValueError(f'{owner}.criterion: unknown criterion {name!r}; choose one of {sorted(_CRITERIA)}')
    if name == 'charbonnier':
        return lambda a, b: torch.sqrt((a - b)**2 + 1e-6).mean()
    return _CRITERIA[name]


def _positive(value, name: str, owner: str, integer: bool = True) -> None:
    ok = value > 0 and (not integer or float(value).is_integer())
    if not ok:
        raise ValueError(f'{owner}.{name} must be a positive {"whole number" if integer else "number"}, got {value!r}')


def luma(x: Tensor) -> Tensor:
    """BT.601 luma of an RGB batch (N, 3, H, W) as (N, 1, H, W): texture terms on it leave the colour to the pixel
    terms (the RGB terms add a little chroma noise, docs/results.md)."""
    if x.shape[1] != 3:
        raise ValueError(f'luma_only needs RGB images (3 channels), got {x.shape[1]}')
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def haar_bands(x: Tensor) -> tuple:
    """One level of the orthonormal Haar transform of ``x`` (N, C, H, W): (LL, LH, HL, HH), each (N, C, H/2, W/2).
    An odd height or width loses its last row or column."""
    x = x[..., :x.shape[-2] // 2 * 2, :x.shape[-1] // 2 * 2]
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return (a + b + c + d) / 2, (a - b + c - d) / 2, (a + b - c - d) / 2, (a - b - c + d) / 2


@LOSS_REGISTRY.register()
class WaveletBandLoss(nn.Module):
    """criterion between the Haar detail bands of ``pred`` and ``target`` over ``levels`` levels.

    Args:
        loss_weight: the term's weight.
        levels: decomposition levels (each halves the size; level 1 is the finest detail).
        level_weights: one weight per level (default: all 1).
        low_weight: weight of the last level's low band (0: detail only, the band the teacher's texture lives in).
        criterion: l1 (default), mse or charbonnier.
    """

    def __init__(self, loss_weight: float = 1.0, levels: int = 2, level_weights: Optional[Sequence[float]] = None,
                 low_weight: float = 0.0, criterion: str = 'l1') -> None:
        super().__init__()
        _positive(levels, 'levels', 'WaveletBandLoss')
        if level_weights is not None and len(level_weights) != levels:
            raise ValueError(f'WaveletBandLoss.level_weights: {len(level_weights)} weights for {levels} levels')
        self.loss_weight, self.levels, self.low_weight = loss_weight, int(levels), float(low_weight)
        self.level_weights = [float(w) for w in (level_weights or [1.0] * self.levels)]
        self.criterion = _criterion(criterion, 'WaveletBandLoss')

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if min(pred.shape[-2:]) < 2**self.levels:
            raise ValueError(f'WaveletBandLoss: {self.levels} levels need images of at least {2**self.levels} '
                             f'pixels a side, got {tuple(pred.shape[-2:])}')
        total = pred.new_zeros(())
        low_p, low_t = pred, target.detach()
        for weight in self.level_weights:
            (low_p, *detail_p), (low_t, *detail_t) = haar_bands(low_p), haar_bands(low_t)
            total = total + weight * sum(self.criterion(p, t) for p, t in zip(detail_p, detail_t)) / 3
        if self.low_weight:
            total = total + self.low_weight * self.criterion(low_p, low_t)
        return self.loss_weight * total


def radial_frequency(height: int, width: int, device=None) -> Tensor:
    """|f| / f_Nyquist of every bin of an rfft2 of an (height, width) image: 0 at DC, 1 at the Nyquist edge."""
    fy = torch.fft.fftfreq(height, device=device).abs().view(-1, 1)
    fx = torch.fft.rfftfreq(width, device=device).view(1, -1)
    return torch.sqrt(fy**2 + fx**2) / 0.5


@LOSS_REGISTRY.register()
class FourierAmplitudeLoss(nn.Module):
    """L1 between the amplitude spectra (rfft2, orthonormal) of ``pred`` and ``target``, per channel, over the bins
    with radial frequency >= ``min_frequency`` (a fraction of Nyquist; 0 = all bins).

    Args:
        loss_weight: the term's weight.
        min_frequency: the lowest frequency compared, as a fraction of Nyquist (0.25: the upper three quarters).
        phase_weight: weight of an L1 on the phase difference's wrap-around (1 - cos), 0 = amplitude only.
        luma_only: compare the luma (BT.601 Y) spectra only, not each RGB channel's.
    """

    def __init__(self, loss_weight: float = 1.0, min_frequency: float = 0.0, phase_weight: float = 0.0,
                 luma_only: bool = False) -> None:
        super().__init__()
        if not 0 <= min_frequency < math.sqrt(2):
            raise ValueError(f'FourierAmplitudeLoss.min_frequency must be in [0, 1.41) (a fraction of Nyquist), '
                             f'got {min_frequency!r}')
        self.loss_weight, self.min_frequency, self.phase_weight = loss_weight, float(min_frequency), phase_weight
        self.luma_only = bool(luma_only)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if self.luma_only:
            pred, target = luma(pred), luma(target)
        fp = torch.fft.rfft2(pred.float(), norm='ortho')
        ft = torch.fft.rfft2(target.detach().float(), norm='ortho')
        mask = (radial_frequency(*pred.shape[-2:], device=pred.device) >= self.min_frequency).to(fp.real.dtype)
        count = mask.sum().clamp(min=1) * pred.shape[0] * pred.shape[1]
        loss = ((fp.abs() - ft.abs()).abs() * mask).sum() / count
        if self.phase_weight:
            cos = (fp * ft.conj()).real / (fp.abs() * ft.abs()).clamp(min=1e-8)
            loss = loss + self.phase_weight * ((1 - cos) * mask).sum() / count
        return self.loss_weight * loss


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of every channel, reflect-padded, radius 3 sigma."""
    radius = max(1, int(math.ceil(3 * sigma)))
    k = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-k**2 / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(x.shape[1], 1, 1, 1)
    pad = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    k = k[..., radius - pad:radius + pad + 1] / k[..., radius - pad:radius + pad + 1].sum(-1, keepdim=True)
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode='reflect'), k, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, pad, pad), mode='reflect'), k.transpose(-1, -2), groups=x.shape[1])


@LOSS_REGISTRY.register()
class PatchSWDLoss(nn.Module):
    """Sliced Wasserstein distance between the distributions of ``patch_size`` x ``patch_size`` patches of ``pred``
    and ``target``, per image, at ``scales`` (1 = full size, 2 = average-pooled by 2, ...).

    Each call projects every patch onto ``num_projections`` random unit directions (drawn from the loss's own
    generator, seeded by ``seed``: the training run's random sequence is untouched and every DDP rank draws the
    same), sorts the projections of each image and compares the sorted values by L1 - a distance between patch
    distributions that ignores where a patch sits. Patches are taken at ``stride`` (1 = every position).

    Args:
        loss_weight: the term's weight.
        patch_size: odd patch side (7 after GPDM).
        num_projections: random directions per call and scale.
        scales: the pooling factors compared.
        stride: step between patches (2 or 4 to cut the cost on large crops).
        seed: the projections' generator seed.
        detail_sigma: > 0: compare patches of the detail layer (the image minus its Gaussian blur of this sigma),
            so that the fine texture, not the patches' mean colour, dominates the distance; 0 = raw patches.
        luma_only: compare patches of the luma (BT.601 Y) only.
    """

    def __init__(self, loss_weight: float = 1.0, patch_size: int = 7, num_projections: int = 64,
                 scales: Sequence[int] = (1, 2, 4), stride: int = 1, seed: int = 0, detail_sigma: float = 0.0,
                 luma_only: bool = False) -> None:
        super().__init__()
        for name, value in (('patch_size', patch_size), ('num_projections', num_projections), ('stride', stride)):
            _positive(value, name, 'PatchSWDLoss')
        if not scales or any(not float(s).is_integer() or s < 1 for s in scales):
            raise ValueError(f'PatchSWDLoss.scales must be a list of whole numbers >= 1, got {scales!r}')
        self.loss_weight, self.patch_size, self.num_projections = loss_weight, int(patch_size), int(num_projections)
        self.scales, self.stride = [int(s) for s in scales], int(stride)
        self.generator = torch.Generator().manual_seed(int(seed))
        if detail_sigma < 0:
            raise ValueError(f'PatchSWDLoss.detail_sigma must be >= 0, got {detail_sigma!r}')
        self.detail_sigma = float(detail_sigma)
        self.luma_only = bool(luma_only)

    def _directions(self, channels: int, device, dtype) -> Tensor:
        w = torch.randn(self.num_projections, channels * self.patch_size**2, generator=self.generator)
        w = w / w.norm(dim=1, keepdim=True)
        return w.view(self.num_projections, channels, self.patch_size, self.patch_size).to(device, dtype)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        target = target.detach()
        if self.luma_only:
            pred, target = luma(pred), luma(target)
        total, used = pred.new_zeros(()), 0
        for scale in self.scales:
            p, t = (F.avg_pool2d(x, scale) if scale > 1 else x for x in (pred, target))
            if self.detail_sigma:
                p, t = p - gaussian_blur(p, self.detail_sigma), t - gaussian_blur(t, self.detail_sigma)
            if min(p.shape[-2:]) < self.patch_size:
                continue  # the scale leaves no whole patch
            w = self._directions(p.shape[1], p.device, p.dtype)
            proj_p = F.conv2d(p, w, stride=self.stride).flatten(2)  # (N, projections, positions)
            proj_t = F.conv2d(t, w, stride=self.stride).flatten(2)
            total = total + F.l1_loss(proj_p.sort(dim=2).values, proj_t.sort(dim=2).values)
            used += 1
        if not used:
            raise ValueError(f'PatchSWDLoss: images of {tuple(pred.shape[-2:])} are smaller than one '
                             f'{self.patch_size}x{self.patch_size} patch at every scale {self.scales}')
        return self.loss_weight * total / used


@LOSS_REGISTRY.register()
class FeatureMatchLoss(nn.Module):
    """Mean over layers of criterion(F_l(student output), stopgrad F_l(teacher output)), each layer's error divided
    by the teacher feature's mean magnitude so that deep and shallow layers weigh alike.

    Args:
        loss_weight: the term's weight.
        criterion: l1 (default) or mse.
        normalize: divide each layer's error by the teacher feature's mean absolute value.
    """

    def __init__(self, loss_weight: float = 1.0, criterion: str = 'l1', normalize: bool = True) -> None:
        super().__init__()
        if criterion not in ('l1', 'mse'):
            raise ValueError(f'FeatureMatchLoss.criterion: unknown criterion {criterion!r}; choose one of l1, mse')
        self.loss_weight, self.criterion, self.normalize = loss_weight, _CRITERIA[criterion], normalize

    def forward(self, pred_feats: Sequence[Tensor], target_feats: Sequence[Tensor]) -> Tensor:
        if len(pred_feats) != len(target_feats) or not pred_feats:
            raise ValueError(f'FeatureMatchLoss: {len(pred_feats)} student vs {len(target_feats)} teacher features')
        per_layer = []
        for fp, ft in zip(pred_feats, target_feats):
            ft = ft.detach()
            err = self.criterion(fp.float(), ft.float())
            per_layer.append(err / ft.float().abs().mean().clamp(min=1e-6) if self.normalize else err)
        return self.loss_weight * torch.stack(per_layer).mean()


def local_variance(x: Tensor, window: int) -> Tensor:
    """Per-pixel variance of ``x`` (N, 1, H, W) over a ``window`` x ``window`` neighbourhood (reflect-padded)."""
    pad = window // 2
    xp = F.pad(x, (pad, pad, pad, pad), mode='reflect')
    mean = F.avg_pool2d(xp, window, stride=1)
    return (F.avg_pool2d(xp**2, window, stride=1) - mean**2).clamp(min=0)


@LOSS_REGISTRY.register()
class ArtifactGuardLoss(nn.Module):
    """LDL's artifact map: M = local variance of the residual (channel mean, ``window`` wide) x the residual's global
    variance ** ``power``, kept where the EMA is closer to the target than the student; loss = L1(M * pred,
    M * target), M detached.

    Args:
        loss_weight: the term's weight (LDL: 1).
        window: the local variance's window (LDL: 7).
        power: the exponent of the global variance (LDL: 1/5).
    """

    def __init__(self, loss_weight: float = 1.0, window: int = 7, power: float = 0.2) -> None:
        super().__init__()
        _positive(window, 'window', 'ArtifactGuardLoss')
        if window % 2 == 0:
            raise ValueError(f'ArtifactGuardLoss.window must be odd, got {window!r}')
        self.loss_weight, self.window, self.power = loss_weight, int(window), float(power)

    def artifact_map(self, pred: Tensor, target: Tensor, ema_pred: Tensor) -> Tensor:
        with torch.no_grad():
            residual = (target - pred).abs().mean(1, keepdim=True)
            ema_residual = (target - ema_pred).abs().mean(1, keepdim=True)
            global_var = residual.flatten(1).var(dim=1).view(-1, 1, 1, 1)
            patch_var = local_variance(residual, self.window) * global_var.clamp(min=0)**self.power
            return patch_var * (ema_residual < residual).to(patch_var.dtype)

    def forward(self, pred: Tensor, target: Tensor, ema_pred: Tensor) -> Tensor:
        target = target.detach()
        weight = self.artifact_map(pred.detach(), target, ema_pred.detach())
        return self.loss_weight * F.l1_loss(weight * pred, weight * target)
