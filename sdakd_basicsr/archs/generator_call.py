"""How each generator family is called, probed, tapped, exported and laid out: the one place that knows.

Every other module asks ``family_of(net_or_spec)`` instead of testing for an architecture. A new family is a
new ``GeneratorFamily`` entry in ``FAMILIES``; anything not listed is treated as a plain single-input SR
network (``x -> sr``), which covers RRDBNet and BasicSR's other SR generators.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from basicsr.models.base_model import BaseModel


def bare_model(net: nn.Module) -> nn.Module:
    """The network inside a (Distributed)DataParallel wrapper: BasicSR's own ``get_bare_model``."""
    return BaseModel.get_bare_model(None, net)  # it reads nothing from ``self``


def rrdbnet_default_taps(spec: dict) -> List[str]:
    """The outputs of every sixth RRDB, of the last one, and of ``conv_body`` (docs/method.md, "Taps")."""
    num_block = int(spec.get('num_block', 23))
    blocks = sorted({min(6 * k - 1, num_block - 1) for k in (1, 2, 3)} | {num_block - 1})
    return [f'body.{b}' for b in blocks] + ['conv_body']


# RRDBNet pixel-unshuffles its input for x2 and x1: first-conv input channels -> scale, and the input side must be
# a multiple of the unshuffle factor
RRDBNET_SCALE_OF_IN_CHANNELS = {3: 4, 12: 2, 48: 1}


def rrdbnet_input_multiple(scale: int) -> int:
    return {2: 2, 1: 4}.get(scale, 1)


# the official Real-ESRGAN x4plus generator (RealESRGAN_x4plus.pth); students change the widths
REALESRGAN_X4PLUS = dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32)

GCFSR_TAPS = ['conv_body_down.1', 'conv_body_down.3', 'style_convs.1', 'style_convs.3', 'style_convs.5',
              'style_convs.7']


@dataclass(frozen=True)
class GeneratorFamily:
    """What a generator family needs from the training loop and the tools.

    takes_condition: forward takes the scale condition (``in_size``) after the image.
    uses_noise: forward takes ``noise=`` (one list shared by teacher and student, made by ``make_noise``).
    fixed_input_size: the input side is the option ``out_size`` (a face generator), not a free LR size.
    exportable: single-input graph that ONNX/ncnn tools can export.
    channels_last_ok: every convolution accepts channels-last tensors (StyleGAN2's modulated convolutions
        fold the batch into convolution groups and need NCHW).
    default_taps: the feature taps used when ``sdakd.taps`` is not given (None: the user must list them).
    """
    name: str
    takes_condition: bool = False
    uses_noise: bool = False
    fixed_input_size: bool = False
    exportable: bool = True
    channels_last_ok: bool = True
    default_taps: Optional[Callable[[dict], List[str]]] = None

    def call(self, net: nn.Module, x: Tensor, cond: Optional[Tensor] = None,
             noise: Optional[List[Tensor]] = None) -> Tensor:
        """One forward pass; returns the image (tuple outputs are unpacked)."""
        args: Tuple = (x, )
        if self.takes_condition:
            if cond is None:
                raise KeyError(f'{self.name} needs the scale condition: the dataset must return `in_size`')
            args = (x, cond)
        out = net(*args, noise=noise) if self.uses_noise else net(*args)
        return out[0] if isinstance(out, (tuple, list)) else out

    def make_noise(self, net: nn.Module, batch: int, device, seed: Optional[int] = None) -> Optional[List[Tensor]]:
        """A fresh noise list for ``batch`` inputs (fixed by ``seed``), or None for families without noise."""
        if not self.uses_noise:
            return None
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return bare_model(net).make_noise(batch, device=device, generator=generator)

    def probe_inputs(self, spec: dict, device, size: int = 16) -> Tuple[Tensor, Optional[Tensor]]:
        """(image, condition) for one small forward pass: ``size`` px (16 is divisible by every RRDBNet
        pixel-unshuffle), or the fixed input size of a face generator."""
        side = spec['out_size'] if self.fixed_input_size else size
        x = torch.rand(1, spec.get('num_in_ch', 3), side, side, device=device)
        cond = torch.ones(1, 1, device=device) if self.takes_condition else None
        return x, cond

    def taps_for(self, spec: dict) -> List[str]:
        if self.default_taps is None:
            raise ValueError(f'sdakd.taps: no default taps for {spec.get("type")}; list the module names to '
                             f'distil (docs/method.md, "Feature-map distillation")')
        return self.default_taps(spec)

    def check_exportable(self, what: str = 'export') -> None:
        if not self.exportable:
            raise ValueError(f'{what}: {self.name} takes a scale condition and/or a noise list; only '
                             f'single-input generators (e.g. RRDBNet) are exported')

    def check_channels_last(self) -> None:
        if not self.channels_last_ok:
            raise ValueError(f'sdakd.channels_last: {self.name} uses StyleGAN2 modulated convolutions, which fold '
                             f'the batch into convolution groups and need the default NCHW layout; set '
                             f'sdakd.channels_last: false')


PLAIN = GeneratorFamily('single-input SR network')
FAMILIES: Dict[str, GeneratorFamily] = {
    'RRDBNet': GeneratorFamily('RRDBNet', default_taps=rrdbnet_default_taps),
    'GCFSR': GeneratorFamily('GCFSR', takes_condition=True, uses_noise=True, fixed_input_size=True, exportable=False,
                             channels_last_ok=False, default_taps=lambda spec: list(GCFSR_TAPS)),
    'GCFSR_blind': GeneratorFamily('GCFSR_blind', uses_noise=True, fixed_input_size=True, exportable=False,
                                   channels_last_ok=False, default_taps=lambda spec: list(GCFSR_TAPS)),
}


def family_of(net_or_spec: Union[nn.Module, dict]) -> GeneratorFamily:
    """The family of a network (by its class name) or of a ``network_*`` option dict (by ``type``)."""
    if isinstance(net_or_spec, dict):
        name = net_or_spec.get('type')
    else:
        name = type(bare_model(net_or_spec)).__name__
    return FAMILIES.get(name, PLAIN)
