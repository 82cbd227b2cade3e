"""How each generator family is called, probed, tapped, exported and laid out: the one place that knows.

Every other module asks ``family_of(net_or_spec)`` instead of testing for an architecture. A new family is a
new ``GeneratorFamily`` entry in ``FAMILIES``; anything not listed is treated as a plain single-input SR
network (``x -> sr``), which covers BasicSR's other SR generators.

Students of another family or depth than the teacher are tapped by *relative depth* (docs/method.md, "Taps"):
each family lists its tap candidates with their depth in (0, 1] (0: the input, 1: the last feature before the
upsampler), and ``student_taps_for`` picks, for every teacher tap, the student candidate nearest in depth.
"""
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel
from basicsr.utils.registry import ARCH_REGISTRY


def bare_model(net: nn.Module) -> nn.Module:
    """The network inside a (Distributed)DataParallel wrapper: BasicSR's own ``get_bare_model``."""
    return BaseModel.get_bare_model(None, net)  # it reads nothing from ``self``


def rrdbnet_default_taps(spec: dict) -> List[str]:
    """The outputs of every sixth RRDB, of the last one, and of ``conv_body`` (docs/method.md, "Taps")."""
    num_block = int(spec.get('num_block', 23))
    blocks = sorted({min(6 * k - 1, num_block - 1) for k in (1, 2, 3)} | {num_block - 1})
    return [f'body.{b}' for b in blocks] + ['conv_body']


def rrdbnet_tap_depths(spec: dict) -> List[Tuple[str, float]]:
    """Each RRDB's output at (i + 1) / (num_block + 1); ``conv_body`` (the trunk before the upsampler) at 1."""
    num_block = int(spec.get('num_block', 23))
    return [(f'body.{i}', (i + 1) / (num_block + 1)) for i in range(num_block)] + [('conv_body', 1.0)]


def srvgg_tap_depths(spec: dict) -> List[Tuple[str, float]]:
    """SRVGGNetCompact's activations ``body.1, body.3, ..., body.(2 num_conv + 1)``: the k-th at
    (k + 1) / (num_conv + 1), the last one (the feature the upsampling convolution reads) at 1."""
    num_conv = int(spec.get('num_conv', 16))
    return [(f'body.{2 * k + 1}', (k + 1) / (num_conv + 1)) for k in range(num_conv + 1)]


def taps_at_depths(candidates: List[Tuple[str, float]], depths: Sequence[float]) -> List[str]:
    """For each depth a candidate, distinct and in depth order where there are enough candidates, with the least
    total distance in depth (a small dynamic programme); else simply the nearest (several taps may share one)."""
    order = sorted(range(len(depths)), key=lambda i: depths[i])
    n, m = len(order), len(candidates)
    if m < n:
        return [min(candidates, key=lambda c: round(abs(c[1] - d), 9))[0] for d in depths]  # ties: the shallower
    inf = float('inf')
    # cost[i][j]: best total distance placing the i+1 shallowest taps with the (i+1)-th on candidate j
    cost = [[inf] * m for _ in range(n)]
    back = [[-1] * m for _ in range(n)]
    for i, tap in enumerate(order):
        for j in range(i, m - (n - 1 - i)):
            dist = abs(candidates[j][1] - depths[tap])
            if i == 0:
                cost[i][j] = dist
                continue
            k = min(range(i - 1, j), key=lambda k: round(cost[i - 1][k], 9))
            cost[i][j], back[i][j] = cost[i - 1][k] + dist, k
    j = min(range(m), key=lambda j: round(cost[n - 1][j], 9))
    chosen = [0] * n
    for i in range(n - 1, -1, -1):
        chosen[order[i]] = candidates[j][0]
        j = back[i][j]
    return chosen


def srvgg_default_taps(spec: dict) -> List[str]:
    """As a teacher: the activations at a quarter, half, three quarters and all of the body."""
    return taps_at_depths(srvgg_tap_depths(spec), (0.25, 0.5, 0.75, 1.0))


def srvgg_spec_from_state(state: dict) -> Optional[dict]:
    """SRVGGNetCompact's arguments from its weights (``body.<i>`` convolutions and PReLU slopes), or None."""
    convs = sorted(int(m.group(1)) for k in state for m in [re.fullmatch(r'body\.(\d+)\.weight', k)] if m
                   and state[k].dim() == 4)
    if not convs or convs[0] != 0 or 'conv_first.weight' in state:
        return None
    if convs != list(range(0, 2 * len(convs) - 1, 2)):
        return None
    if 'body.1.weight' not in state:
        raise ValueError('an SRVGGNetCompact without PReLU slopes (act_type relu or leakyrelu): the activation '
                         'cannot be read from the weights; build it from its option file (network_g)')
    num_in, num_feat = state['body.0.weight'].shape[1], state['body.0.weight'].shape[0]
    out_ch = state[f'body.{convs[-1]}.weight'].shape[0]
    upscale = int(round((out_ch / num_in)**0.5))
    if upscale * upscale * num_in != out_ch:
        raise ValueError(f'SRVGGNetCompact: the last convolution has {out_ch} outputs, not 3 x scale^2')
    return dict(type='SRVGGNetCompact', num_in_ch=num_in, num_out_ch=num_in, num_feat=num_feat,
                num_conv=len(convs) - 2, upscale=upscale, act_type='prelu')


# RRDBNet pixel-unshuffles its input for x2 and x1: first-conv input channels -> scale, and the input side must be
# a multiple of the unshuffle factor
RRDBNET_SCALE_OF_IN_CHANNELS = {3: 4, 12: 2, 48: 1}


def rrdbnet_input_multiple(scale: int) -> int:
    return {2: 2, 1: 4}.get(scale, 1)


def rrdbnet_spec_from_state(state: dict) -> Optional[dict]:
    """RRDBNet's arguments from its weights (widths, depth; scale from the pixel-unshuffled input), or None."""
    if 'conv_first.weight' not in state or 'body.0.rdb1.conv1.weight' not in state:
        return None
    in_ch = state['conv_first.weight'].shape[1]
    if in_ch not in RRDBNET_SCALE_OF_IN_CHANNELS:
        raise ValueError(f'conv_first takes {in_ch} channels; RRDBNet takes 3 (x4), 12 (x2) or 48 (x1)')
    blocks = {int(m.group(1)) for k in state for m in [re.match(r'body\.(\d+)\.', k)] if m}
    return dict(type='RRDBNet', num_in_ch=3, num_out_ch=state['conv_last.weight'].shape[0],
                num_feat=state['conv_first.weight'].shape[0], num_block=max(blocks) + 1,
                num_grow_ch=state['body.0.rdb1.conv1.weight'].shape[0], scale=RRDBNET_SCALE_OF_IN_CHANNELS[in_ch])


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
    tap_depths: tap candidates with their relative depth in (0, 1], for students of another family or depth.
    scale_key: the constructor argument that holds the upscaling factor (BasicSR's own names differ).
    input_multiple: the input side must be a multiple of this (RRDBNet x2/x1 pixel-unshuffle their input).
    spec_from_state: the constructor arguments read from a state dict (None when it is not of this family).
    """
    name: str
    takes_condition: bool = False
    uses_noise: bool = False
    fixed_input_size: bool = False
    exportable: bool = True
    channels_last_ok: bool = True
    default_taps: Optional[Callable[[dict], List[str]]] = None
    tap_depths: Optional[Callable[[dict], List[Tuple[str, float]]]] = None
    scale_key: str = 'scale'
    input_multiple: Callable[[int], int] = lambda scale: 1
    spec_from_state: Optional[Callable[[dict], Optional[dict]]] = None

    def scale_of(self, spec: dict, default: int = 4) -> int:
        return int(spec.get(self.scale_key, default))

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
    'RRDBNet': GeneratorFamily('RRDBNet', default_taps=rrdbnet_default_taps, tap_depths=rrdbnet_tap_depths,
                               input_multiple=rrdbnet_input_multiple, spec_from_state=rrdbnet_spec_from_state),
    # Real-ESRGAN's compact model (realesr-general-x4v3, realesr-animevideov3); basicsr and realesrgan both
    # register it, with the same weights' layout
    'SRVGGNetCompact': GeneratorFamily('SRVGGNetCompact', default_taps=srvgg_default_taps,
                                       tap_depths=srvgg_tap_depths, scale_key='upscale',
                                       spec_from_state=srvgg_spec_from_state),
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


def student_taps_for(teacher_spec: dict, teacher_taps: Sequence[str], student_spec: dict) -> List[str]:
    """The student module for each teacher tap: the same name when both nets are of one family and depth
    (or a tap is not a depth candidate of its family), else the student candidate nearest in relative depth.
    A student with fewer candidates than taps reuses one for several (each tap keeps its own adapter)."""
    t_family, s_family = family_of(teacher_spec), family_of(student_spec)
    if t_family.tap_depths is None or s_family.tap_depths is None:
        return list(teacher_taps)
    t_candidates = t_family.tap_depths(teacher_spec)
    s_candidates = s_family.tap_depths(student_spec)
    if t_family is s_family and [n for n, _ in t_candidates] == [n for n, _ in s_candidates]:
        return list(teacher_taps)
    depth_of = dict(t_candidates)
    unplaced = [t for t in teacher_taps if t not in depth_of]
    if unplaced:
        raise ValueError(f'sdakd.student_taps: the teacher taps {unplaced} have no relative depth in '
                         f'{t_family.name} (candidates: {", ".join(n for n, _ in t_candidates)}), and the student '
                         f'is a {s_family.name} of another shape; list the student modules in sdakd.student_taps')
    return taps_at_depths(s_candidates, [depth_of[t] for t in teacher_taps])


def spec_from_state(state: dict, what: str = 'checkpoint') -> dict:
    """The option dict (``type`` + constructor arguments) of the generator whose weights ``state`` holds."""
    for family in FAMILIES.values():
        if family.spec_from_state is not None:
            try:
                spec = family.spec_from_state(state)
            except ValueError as err:
                raise ValueError(f'{what}: {err}') from None
            if spec is not None:
                return spec
    known = [f.name for f in FAMILIES.values() if f.spec_from_state is not None]
    raise ValueError(f'{what}: the weights are not those of a {" or ".join(known)} (keys start with '
                     f'{sorted(state)[:4]})')


def build_generator(spec: dict) -> nn.Module:
    """The network of an option dict, through BasicSR's registry (SRVGGNetCompact resolves to whichever of
    basicsr's and realesrgan's identical classes is registered)."""
    spec = dict(spec)
    if spec['type'] not in ARCH_REGISTRY and f'{spec["type"]}_basicsr' in ARCH_REGISTRY:
        spec['type'] += '_basicsr'  # the registry would find it too, with a printed notice
    return build_network(spec)
