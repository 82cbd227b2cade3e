"""A release folder a user can hand on: the student in every format Real-ESRGAN users run, and its model card.

``<name>.pth`` (only ``params_ema``: the official Real-ESRGAN format), ``<name>.onnx`` (dynamic shapes, parity
checked with ONNX Runtime), ``<name>.param/.bin`` (ncnn, fp16 weights, as the official ncnn models) and
``<name>-fp32.param/.bin`` (ncnn, fp32 weights), ``release.json`` (what the upscale command and others read) and
``model_card.md``.
"""
import glob
import importlib.util
import json
import os
import re
import shutil
from os import path as osp
from typing import Callable, Dict, List, Optional, Tuple

import torch

from ..archs.generator_call import family_of
from ..checkpoints import EMA_FIRST, atomic_save, load_generator, network_state
from ..distill.option_file import read_option_file
from ..metrics import cost
from .ncnn import ncnn_writable, write_ncnn
from .onnx_export import check_parity, default_image, export_onnx


def iterations_run(name: str, root: str = '.') -> Optional[int]:
    """``train.total_iter`` as the run really used it: BasicSR copies the option file *before* ``--force_yml``,
    but logs the options it ran with at the top of its training log."""
    logs = sorted(glob.glob(osp.join(root, 'experiments', name, 'train_*.log')))
    if not logs:
        return None
    with open(logs[-1], encoding='utf-8', errors='replace') as f:
        for line in f:
            match = re.match(r'^\s+total_iter: (\d+)\s*$', line)
            if match:
                return int(match.group(1))
    return None


def stage_chain(opt: dict, root: str = '.') -> List[dict]:
    """The option files (as BasicSR copied them into each experiment folder) of the stages that made a student:
    this one and, through ``path.pretrain_network_g``, each earlier one."""
    chain, seen = [opt], set()
    current = opt
    while True:
        prev = ((current.get('path') or {}).get('pretrain_network_g') or '')
        parts = osp.normpath(prev).split(os.sep)
        if 'experiments' not in parts or prev in seen:
            break
        seen.add(prev)
        folder = osp.join(root, *parts[:parts.index('experiments') + 2])
        copies = sorted(glob.glob(osp.join(folder, '*.yml')))
        if not copies:
            break
        current = read_option_file(copies[-1])
        chain.append(current)
    return chain[::-1]


def runtimes(spec: dict) -> List[Tuple[str, Optional[str]]]:
    """Where a student of this architecture runs: [(runtime, None when it runs there, else why not)]."""
    kind = spec.get('type')
    try:
        family_of(spec).check_exportable('ONNX')
        onnx = None
    except ValueError as err:
        onnx = str(err)
    if kind == 'SRVGGNetCompact':
        spandrel = None
    elif kind == 'RRDBNet' and spec.get('num_grow_ch', 32) != 32:
        spandrel = (f"spandrel's ESRGAN loader assumes num_grow_ch 32 (this student has {spec.get('num_grow_ch')}); "
                    'use a num_grow_ch 32 student for these apps')
    elif kind == 'RRDBNet':
        spandrel = None
    else:
        spandrel = f'spandrel has no loader for {kind}'
    return [('PyTorch: BasicSR, Real-ESRGAN (RealESRGANer), tools.upscale', None),
            ('ONNX Runtime (the .onnx file)', onnx),
            ('ncnn: realesrgan-ncnn-vulkan and its ports (the .param/.bin files)', ncnn_writable(spec)),
            ('spandrel: ComfyUI, chaiNNer and other spandrel-based apps (the .pth file)', spandrel)]


def make_release(opt: dict, out_dir: str, name: str, checkpoint: Optional[str] = None,
                 evaluation: Optional[str] = None, picture: Optional[str] = None,
                 log: Callable[[str], None] = print) -> Dict[str, str]:
    """Write the release folder; return {kind: path}."""
    spec = dict(opt['network_g'])
    checkpoint = checkpoint or osp.join('experiments', opt['name'], 'models', 'net_g_latest.pth')
    net = load_generator(spec, checkpoint, EMA_FIRST, 'cpu', what='release')  # the EMA student, as BasicSR
    os.makedirs(out_dir, exist_ok=True)
    files: Dict[str, str] = {}
    base = osp.join(out_dir, name)
    atomic_save({'params_ema': network_state(net)}, f'{base}.pth')
    files['pytorch'] = f'{base}.pth'
    scale = family_of(spec).scale_of(spec, opt.get('scale', 4))
    notes: List[str] = []

    parity = []
    if importlib.util.find_spec('onnx') is not None:
        export_onnx(net, f'{base}.onnx')
        files['onnx'] = f'{base}.onnx'
        if importlib.util.find_spec('onnxruntime') is not None:
            image = default_image()[:, :, :64, :64]
            parity = check_parity(net, files['onnx'], image)
            worst = min(db for _, db in parity)
            if worst < 50:
                raise RuntimeError(f'release: ONNX parity {worst:.1f} dB is below 50 dB; {files["onnx"]} is wrong')
        else:
            notes.append('ONNX parity not checked: onnxruntime is not installed')
    else:
        notes.append('no ONNX file: the onnx package is not installed (extra `export`)')

    why_not = ncnn_writable(spec)
    if why_not is None:
        state = network_state(net)
        write_ncnn(state, spec, f'{base}.param', f'{base}.bin', fp16=True)
        write_ncnn(state, spec, f'{base}-fp32.param', f'{base}-fp32.bin', fp16=False)
        files.update({'ncnn_fp16': f'{base}.param', 'ncnn_fp32': f'{base}-fp32.param'})
    else:
        notes.append(f'no ncnn files: {why_not}')

    x = torch.rand(1, 3, 64, 64)
    params, macs = cost.count_params(net), cost.count_macs(net, x)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    latency = cost.profile_latency(net, x, repeats=5)
    teacher = (opt.get('sdakd') or {}).get('teacher_g') or {}
    chain = stage_chain(opt)
    if evaluation:
        shutil.copy(evaluation, osp.join(out_dir, 'evaluation.md'))
    if picture:
        shutil.copy(picture, osp.join(out_dir, 'comparison' + osp.splitext(picture)[1]))
    meta = {'name': name, 'network_g': spec, 'scale': scale, 'params': params, 'macs_per_lr_pixel': macs / 64 / 64,
            'cpu_latency_64x64_s': latency, 'teacher': teacher.get('path'),
            'files': {k: osp.basename(v) for k, v in files.items()}}
    with open(osp.join(out_dir, 'release.json'), 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=1)
    card = _model_card(name, spec, scale, params, macs, latency, teacher, chain, files, parity, notes,
                       evaluation is not None, picture)
    with open(osp.join(out_dir, 'model_card.md'), 'w', encoding='utf-8') as f:
        f.write(card)
    files['card'] = osp.join(out_dir, 'model_card.md')
    log(f'release: wrote {", ".join(osp.basename(p) for p in files.values())} to {out_dir}')
    return files


def _model_card(name, spec, scale, params, macs, latency, teacher, chain, files, parity, notes, has_eval,
                picture) -> str:
    widths = ', '.join(f'{k} {v}' for k, v in spec.items() if k != 'type')
    ctor = ', '.join(f'{k}={v!r}' for k, v in spec.items() if k != 'type')
    stages = '\n'.join(f'| {o.get("name")} | {(o.get("sdakd") or {}).get("stage", "-")} | '
                       f'{iterations_run(o.get("name", "")) or (o.get("train") or {}).get("total_iter", "-")} |'
                       for o in chain)
    kinds = {'pytorch': 'BasicSR / Real-ESRGAN checkpoint, `params_ema` only',
             'onnx': 'ONNX, dynamic batch / height / width', 'ncnn_fp16': 'ncnn model (with its .bin), fp16 weights',
             'ncnn_fp32': 'ncnn model (with its .bin), fp32 weights'}
    formats = '\n'.join(f'- `{osp.basename(p)}`: {kinds.get(kind, kind)}' for kind, p in files.items())
    where = '\n'.join(f'| {runtime} | {"yes" if why is None else "no: " + why} |' for runtime, why in runtimes(spec))
    parity_text = '; '.join(f'{n}: {db:.1f} dB' for n, db in parity) or 'not checked'
    return f"""# {name}

A student generator distilled with SDAKD (sdakd_basicsr). A plain BasicSR `{spec.get('type')}`: Real-ESRGAN's
inference, BasicSR's test scripts and the ncnn runtime load it without the plugin.

| | |
|---|---|
| architecture | {spec.get('type')} ({widths}) |
| scale | x{scale} |
| parameters | {params:,d} ({params / 1e6:.2f} M) |
| MACs per LR pixel | {macs / 64 / 64 / 1e6:.2f} M |
| CPU latency, 64x64 LR (median of 5, {torch.get_num_threads()} threads) | {latency * 1e3:.0f} ms |
| teacher | {teacher.get('path', 'n/a')} ({(teacher.get('network') or {}).get('type', '')}) |
| ONNX parity (ONNX Runtime vs PyTorch) | {parity_text} |

## Files

{formats}

## Where it runs

| runtime | |
|---|---|
{where}

Use: `python -m sdakd_basicsr.tools.upscale -i <images> -o <out> --model <this folder>`; Real-ESRGAN:
`RealESRGANer(scale={scale}, model_path='{name}.pth', model={spec.get('type')}({ctor}))`; realesrgan-ncnn-vulkan: copy
`{name}.param/.bin` into its `models/` folder and run `-n {name} -s {scale}`.

## How it was made

| experiment | SDAKD stage | iterations |
|---|---|---|
{stages}
{chr(10) + '## Evaluation' + chr(10) + chr(10) + 'See `evaluation.md`.' + chr(10) if has_eval else ''}{
chr(10) + f'![comparison](comparison{osp.splitext(picture)[1]})' + chr(10) if picture else ''}
{chr(10).join('- ' + n for n in notes)}
"""


def read_release(folder: str) -> dict:
    with open(osp.join(folder, 'release.json'), encoding='utf-8') as f:
        return json.load(f)
