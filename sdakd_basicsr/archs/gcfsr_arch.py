"""GCFSR (He et al., CVPR 2022): scale-conditioned face super-resolution, and its discriminator.

Our own implementation on basicsr's StyleGAN2 building blocks (``basicsr.archs.stylegan2_arch``), written
from the architecture description (no code of the official repository, which has no licence). Parameter
names and shapes match the official checkpoints, so ``gcfsr-1024`` (``params_ema``) and
``gcfsr_blind_512.pth`` (raw state dict) load strictly. Constructor and forward signatures follow the
official ones, so official option files work. Differences that matter:

* ``narrow < 1`` works: the latent layer's input size follows the narrowed 4x4 feature (the official code
  hard-codes 4096 / 8192);
* ``make_noise()`` returns the noise list the decoder really consumes (16x16 ... out_size, two per level
  after the first); pass it as ``noise=`` to teacher and student alike so that distillation compares like
  with like. The registered ``noises.noise*`` buffers keep their official (StyleGAN2) shapes only so that
  official checkpoints load; they are never used.
"""
import math
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

from basicsr.archs.stylegan2_arch import ConvLayer, EqualLinear, ResBlock, StyleConv, ToRGB
from basicsr.utils.registry import ARCH_REGISTRY


def gcfsr_channels(narrow: float = 1, channel_multiplier: int = 2) -> dict:
    """StyleGAN2's channel table, every width times ``narrow``."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
            256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return {str(k): int(v * narrow) for k, v in base.items()}


def _log_size(out_size: int) -> int:
    log_size = int(math.log2(out_size)) if out_size > 0 else 0
    if out_size < 32 or 2**log_size != out_size or out_size > 1024:
        raise ValueError(f'GCFSR out_size must be a power of two between 32 and 1024, got {out_size}')
    return log_size


class StyleConvScaleShift(StyleConv):
    """A modulated conv whose output is blended with the encoder feature by the scale condition:
    ``out * s1 + shift * s2`` with (s1, s2) normalised to unit length, then the activation."""

    def forward(self, x: Tensor, style: Tensor, noise: Optional[Tensor], scale1: Tensor, scale2: Tensor,
                shift: Tensor) -> Tensor:
        out = self.modulated_conv(x, style)
        if noise is None:
            noise = out.new_empty(out.shape[0], 1, *out.shape[2:]).normal_()
        out = out + self.weight * noise
        norm = torch.sqrt(scale1**2 + scale2**2 + 1e-8)
        out = out * (scale1 / norm) + shift * (scale2 / norm)
        return self.activate(out)


class _GCFSRBase(nn.Module):
    """Encoder, feature modulation, latent and decoder shared by GCFSR and GCFSR_blind."""

    def __init__(self, out_size: int, num_style_feat: int, channel_multiplier: int, resample_kernel: Sequence[int],
                 narrow: float, blind: bool) -> None:
        super().__init__()
        self.out_size = out_size
        self.log_size = _log_size(out_size)
        self.num_style_feat = num_style_feat
        ch = self.channels = gcfsr_channels(narrow, channel_multiplier)
        rk = tuple(resample_kernel)

        # encoder: out_size -> 16
        self.conv_body_first = ConvLayer(3, ch[f'{out_size}'], 3, bias=True, activate=True)
        self.conv_body_down = nn.ModuleList()
        in_ch = ch[f'{out_size}']
        for k in range(self.log_size - 1, 3, -1):
            self.conv_body_down.append(ConvLayer(in_ch, ch[f'{2**k}'], 3, downsample=True, resample_kernel=rk))
            in_ch = ch[f'{2**k}']

        # feature modulation, one entry per resolution; stored out_size .. 16 (the official key order)
        resolutions = [2**k for k in range(self.log_size, 3, -1)]
        self.condition_scale1 = nn.ModuleList(
            EqualLinear(1, ch[f'{r}'], bias=True, bias_init_val=1, activation=None) for r in resolutions)
        self.condition_scale2 = nn.ModuleList(
            EqualLinear(1, ch[f'{r}'], bias=True, bias_init_val=1, activation=None) for r in resolutions)
        self.condition_shift = nn.ModuleList(
            ConvLayer(ch[f'{r}'], ch[f'{r}'], 3, bias=True, activate=False) for r in resolutions)

        # latent from the 16x16 encoder feature
        self.num_latent = (self.log_size - 2) * 2 - 2
        final_ch = ch['4'] if blind else ch['4'] // 2
        self.final_down1 = ConvLayer(ch['16'], ch['8'], 3, downsample=True, resample_kernel=rk)
        self.final_down2 = ConvLayer(ch['8'], final_ch, 3, downsample=True, resample_kernel=rk)
        self.final_linear = EqualLinear(final_ch * 16, num_style_feat * self.num_latent, bias=True,
                                        activation='fused_lrelu')

        # decoder: 16 -> out_size
        self.final_conv = ConvLayer(ch['16'], ch['16'], 3)
        self.style_conv1 = StyleConvScaleShift(ch['16'], ch['16'], 3, num_style_feat, resample_kernel=rk)
        self.to_rgb1 = ToRGB(ch['16'], num_style_feat, upsample=False, resample_kernel=rk)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = ch['16']
        for i in range(5, self.log_size + 1):
            out_ch = ch[f'{2**i}']
            self.style_convs.append(StyleConv(in_ch, out_ch, 3, num_style_feat, sample_mode='upsample',
                                              resample_kernel=rk))
            self.style_convs.append(StyleConvScaleShift(out_ch, out_ch, 3, num_style_feat, resample_kernel=rk))
            self.to_rgbs.append(ToRGB(out_ch, num_style_feat, upsample=True, resample_kernel=rk))
            in_ch = out_ch

        # official buffers (StyleGAN2 shapes), kept for strict checkpoint loading only
        self.noises = nn.Module()
        for k in range((self.log_size - 4) * 2 + 1):
            res = 2**((k + 5) // 2)
            self.noises.register_buffer(f'noise{k}', torch.randn(1, 1, res, res))

    def noise_shapes(self) -> List[int]:
        """Spatial size of each noise map the decoder consumes, in order."""
        return [16] + [2**i for i in range(5, self.log_size + 1) for _ in range(2)]

    def make_noise(self, batch: int = 1, device=None, generator: Optional[torch.Generator] = None) -> List[Tensor]:
        """One correctly shaped noise list (share it between teacher and student)."""
        device = device or self.final_linear.weight.device
        return [torch.randn(batch, 1, s, s, generator=generator).to(device) for s in self.noise_shapes()]

    def _generate(self, x: Tensor, cond: Tensor, noise, randomize_noise: bool, return_latents: bool):
        if x.shape[-1] != self.out_size or x.shape[-2] != self.out_size:
            raise ValueError(f'GCFSR({self.out_size}) takes {self.out_size}x{self.out_size} inputs (the LR image '
                             f'upsampled back to the output size), got {tuple(x.shape[-2:])}')
        if noise is None:
            if not randomize_noise:
                raise ValueError('randomize_noise=False needs an explicit noise list (net.make_noise()): the '
                                 'registered noise buffers have StyleGAN2 shapes that the decoder cannot use')
            noise = [None] * len(self.noise_shapes())
        b = x.shape[0]
        feat = self.conv_body_first(x)
        feats = [feat]
        for conv in self.conv_body_down:
            feat = conv(feat)
            feats.insert(0, feat)  # index 0 = 16x16
        # the modulation modules are stored from out_size down to 16; use them from 16 up, like feats
        scale1 = [m(cond).view(b, -1, 1, 1) for m in reversed(self.condition_scale1)]
        scale2 = [m(cond).view(b, -1, 1, 1) for m in reversed(self.condition_scale2)]
        shift = [m(f) for m, f in zip(reversed(self.condition_shift), feats)]

        latent = self.final_down2(self.final_down1(feats[0]))
        latent = self.final_linear(latent.reshape(b, -1)).view(b, self.num_latent, self.num_style_feat)

        out = self.final_conv(feats[0])
        out = self.style_conv1(out, latent[:, 0], noise[0], scale1[0], scale2[0], shift[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for level, (up_conv, mod_conv, to_rgb) in enumerate(
                zip(self.style_convs[::2], self.style_convs[1::2], self.to_rgbs), start=1):
            out = up_conv(out, latent[:, i], noise=noise[2 * level - 1])
            out = mod_conv(out, latent[:, i + 1], noise[2 * level], scale1[level], scale2[level], shift[level])
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip, (latent if return_latents else None)


@ARCH_REGISTRY.register()
class GCFSR(_GCFSRBase):
    """Scale-conditioned GCFSR. ``x``: the LR face bicubic-upsampled to ``out_size``, in [-1, 1];
    ``in_size``: (B, 1) condition ``scale / cond_norm``. Returns ``(image, latent or None)``."""

    def __init__(self, out_size: int, num_style_feat: int = 512, channel_multiplier: int = 2,
                 resample_kernel: Sequence[int] = (1, 3, 3, 1), narrow: float = 1) -> None:
        super().__init__(out_size, num_style_feat, channel_multiplier, resample_kernel, narrow, blind=False)

    def forward(self, x: Tensor, in_size: Tensor, noise=None, randomize_noise: bool = True,
                return_latents: bool = False):
        cond = in_size.to(x.dtype).view(-1, 1)
        if cond.shape[0] not in (1, x.shape[0]):
            raise ValueError(f'in_size has {cond.shape[0]} conditions for a batch of {x.shape[0]}')
        return self._generate(x, cond.expand(x.shape[0], 1), noise, randomize_noise, return_latents)


@ARCH_REGISTRY.register()
class GCFSR_blind(_GCFSRBase):  # noqa: N801  (the official name, so official option files work)
    """Blind GCFSR: no condition input (fixed to 1); the input is the degraded face at ``out_size``."""

    def __init__(self, out_size: int, num_style_feat: int = 512, channel_multiplier: int = 2,
                 resample_kernel: Sequence[int] = (1, 3, 3, 1), narrow: float = 1) -> None:
        super().__init__(out_size, num_style_feat, channel_multiplier, resample_kernel, narrow, blind=True)

    def forward(self, x: Tensor, noise=None, randomize_noise: bool = True, return_latents: bool = False):
        cond = x.new_ones(x.shape[0], 1)
        return self._generate(x, cond, noise, randomize_noise, return_latents)


@ARCH_REGISTRY.register()
class StyleGAN2Discriminator_no_std(nn.Module):  # noqa: N801  (the official name)
    """GCFSR's discriminator: StyleGAN2's without the minibatch-stddev channel; ``narrow`` scales widths.
    Returns (B, 1) logits. ``stddev_group`` is accepted for signature compatibility and unused."""

    def __init__(self, out_size: int, channel_multiplier: int = 2, resample_kernel: Sequence[int] = (1, 3, 3, 1),
                 stddev_group: int = 4, narrow: float = 1) -> None:
        super().__init__()
        log_size = _log_size(out_size)
        ch = gcfsr_channels(narrow, channel_multiplier)
        layers = [ConvLayer(3, ch[f'{out_size}'], 1)]
        in_ch = ch[f'{out_size}']
        for i in range(log_size, 2, -1):
            layers.append(ResBlock(in_ch, ch[f'{2**(i - 1)}'], tuple(resample_kernel)))
            in_ch = ch[f'{2**(i - 1)}']
        self.conv_body = nn.Sequential(*layers)
        self.final_conv = ConvLayer(in_ch, ch['4'], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch['4'] * 16, ch['4'], bias=True, activation='fused_lrelu'),
            EqualLinear(ch['4'], 1, bias=True, activation=None))

    def forward(self, x: Tensor) -> Tensor:
        out = self.final_conv(self.conv_body(x))
        return self.final_linear(out.view(out.shape[0], -1))
