"""Checkpoint reading and writing, used by the model and by every tool alike.

One ``param_key`` policy (``select_params``): the requested entry, and nothing else — a missing entry is an
error that lists the entries present (BasicSR silently falls back to ``params``, which loaded the raw weights
where the EMA ones were asked for). A fallback is written out explicitly as a list, tried in order
(``param_key_g: [params_ema, params]``); ``param_key: ~`` means the file is a raw state dict. Reading wraps
every low-level error (empty, truncated, not a checkpoint) in a ``CheckpointError`` naming the file and what
was expected. Writes go to a temporary name and are renamed only once complete and read back, so an
interrupted or failed save never replaces a good file.
"""
import errno
import os
import shutil
import time
import zipfile
from os import path as osp
from typing import Dict, Sequence, Union

import torch
from torch import Tensor, nn

from basicsr.utils import get_root_logger

from .archs.generator_call import bare_model, build_generator

PARTIAL = '.partial'  # label of files being written


ParamKey = Union[None, str, Sequence[str]]
# where the EMA weights are wanted but a run without EMA saved only 'params' (tools, the EMA copy's init)
EMA_FIRST = ('params_ema', 'params')
ZIP_MAGIC = b'PK\x03\x04'  # torch.save's format since 1.6


class CheckpointError(ValueError):
    """A file that is not the checkpoint an option expects: the message names the file and the option."""


def diagnose_unreadable(path: str) -> str:
    """What an unloadable file looks like: truncated zip, damaged legacy pickle, text, or something else."""
    with open(path, 'rb') as f:
        head = f.read(64)
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            return 'a truncated PyTorch checkpoint (its zip directory is missing: an interrupted copy or save?)'
        return 'a damaged PyTorch checkpoint (its zip directory is present but an entry is unreadable)'
    if head[:1] == b'\x80':
        return 'a damaged or truncated checkpoint in the legacy (pickle) format'
    if head.lstrip().startswith((b'<', b'{', b'#')) or all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return 'a text file, not a checkpoint (an HTML error page from a failed download?)'
    return 'not a PyTorch checkpoint'


def read_checkpoint(path: str, what: str = 'checkpoint') -> dict:
    """``torch.load`` onto the CPU; every failure is a ``FileNotFoundError``/``CheckpointError`` naming the
    option (``what``) and the file: missing, empty, truncated, damaged, not a checkpoint, not a dict."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what}: checkpoint not found: {path}')
    size = osp.getsize(path)
    expected = 'expected a checkpoint written by torch.save (BasicSR: a dict with params / params_ema)'
    if size == 0:
        raise CheckpointError(f'{what}: {path} is empty (0 bytes: an interrupted copy or save?); {expected}')
    try:
        state = torch.load(path, map_location='cpu')
    except Exception as err:  # EOFError, RuntimeError (zip), UnpicklingError, OSError ...
        diagnosis = diagnose_unreadable(path)
        if 'Weights only load failed' in str(err) and diagnosis.startswith('a damaged PyTorch'):
            raise CheckpointError(f'{what}: {path} holds Python objects other than tensors and plain containers; '
                                  f'torch refuses to unpickle them safely. {expected}') from err
        raise CheckpointError(f'{what}: {path} ({size:,d} bytes) is {diagnosis}: '
                              f'{type(err).__name__}: {str(err)[:200]}; {expected}') from err
    if not isinstance(state, dict):
        raise CheckpointError(f'{what}: {path} holds a {type(state).__name__}, not a checkpoint dict; {expected}')
    return state


def select_params(state: dict, param_key: ParamKey, path: str, what: str = 'checkpoint') -> Dict[str, Tensor]:
    """The state dict stored under ``param_key`` (the policy above); ``module.`` prefixes removed."""
    if param_key is None:
        params = state
    else:
        keys = [param_key] if isinstance(param_key, str) else list(param_key)
        present = [k for k in keys if k in state]
        if not present:
            entries = sorted(str(k) for k in state)
            fix = ('set the param_key option to one of them, ~ for a raw state dict, or a list such as '
                   '[params_ema, params] to fall back explicitly')
            raise CheckpointError(f'{what}: {path} has no {" / ".join(map(repr, keys))} entry; its entries: '
                                  f'{entries[:8]}{" ..." if len(entries) > 8 else ""}; {fix}')
        if present[0] != keys[0]:
            get_root_logger().info(f'{what}: {path} has no {keys[0]!r}; loading {present[0]!r} (param_key {keys})')
        params = state[present[0]]
    if not isinstance(params, dict) or not all(isinstance(v, Tensor) for v in params.values()):
        raise CheckpointError(f'{what}: {path} [{param_key}] is not a state dict of tensors (a training state '
                              'or another kind of file?)')
    return {k[7:] if k.startswith('module.') else k: v for k, v in params.items()}


def describe_mismatch(net: nn.Module, state: Dict[str, Tensor], limit: int = 4) -> str:
    """A short account of how a state dict differs from a network: missing, unexpected, mis-shaped keys."""
    own = bare_model(net).state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(own[k].shape)}' for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    if shapes:
        parts.append(f'{len(shapes)} shape mismatch(es), e.g. ' + '; '.join(shapes[:limit]))
    if missing:
        parts.append(f'{len(missing)} key(s) missing from the checkpoint, e.g. {missing[:limit]}')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected key(s), e.g. {unexpected[:limit]}')
    return '; '.join(parts) or 'no difference found'


def load_into(net: nn.Module, path: str, param_key: ParamKey = 'params', strict: bool = True,
              what: str = 'checkpoint') -> nn.Module:
    """Load ``path[param_key]`` into ``net`` (bare); a mismatch names the file and what does not fit."""
    params = select_params(read_checkpoint(path, what), param_key, path, what)
    target = bare_model(net)
    # BasicSR's own wording, so that logs read the same with and without the plugin
    get_root_logger().info(f'Loading {type(target).__name__} model from {path}, with param key: [{param_key}].')
    if strict:
        problem = describe_mismatch(target, params)
        if problem != 'no difference found':
            raise CheckpointError(f'{what}: {path} [{param_key}] does not fit {type(target).__name__}: {problem}. '
                                  f'Check the widths in the option file (num_feat / num_grow_ch / num_block) against '
                                  f'the run that wrote it.')
    else:  # as BasicSR: entries of another shape are skipped, with a warning
        own = target.state_dict()
        skipped = [k for k in params if k in own and params[k].shape != own[k].shape]
        if skipped:
            get_root_logger().warning(f'{what}: {path}: skipping {len(skipped)} entries of another shape, e.g. '
                                      f'{skipped[:4]}')
        params = {k: v for k, v in params.items() if k not in skipped}
    target.load_state_dict(params, strict=strict)
    return net


def load_generator(spec: dict, path: str, param_key: ParamKey = 'params_ema', device='cpu',
                   what: str = 'checkpoint') -> nn.Module:
    """A network built from its option dict and loaded from ``path`` (strict), in eval mode."""
    net = build_generator(spec)
    load_into(net, path, param_key, True, what)
    return net.to(device).eval()


def atomic_save(obj, path: str, retries: int = 3) -> None:
    """``torch.save`` to ``path`` via a temporary file in the same folder, flushed to disk, read back, renamed.

    The file under ``path`` is replaced only by a copy that loads again; on failure (a full disk, a flaky
    network file system) the previous file is left as it was, the temporary file is removed and the error
    names ``path`` and the cause.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f'{path}{PARTIAL}'
    for attempt in range(retries):  # BasicSR's retries, for flaky (network) file systems
        try:
            with open(tmp, 'wb') as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())
            torch.load(tmp, map_location='cpu', weights_only=False)  # a write that did not complete fails here
            break
        except Exception as err:  # OSError, or the unpickling error of a truncated file
            if osp.exists(tmp):
                os.remove(tmp)
            full = isinstance(err, OSError) and err.errno == errno.ENOSPC
            if full or attempt == retries - 1:
                cause = (f'no space left on the device of {folder} ({shutil.disk_usage(folder).free / 2**20:.0f} MiB '
                         f'free)' if full else f'{type(err).__name__}: {err}')
                raise OSError(f'could not write {path}: {cause}; the previous file, if any, is unchanged') from err
            get_root_logger().warning(f'Saving {path} failed ({err}); retrying')
            time.sleep(1)
    os.replace(tmp, path)


def network_state(net: nn.Module) -> Dict[str, Tensor]:
    """The bare network's state dict on the CPU, without ``module.`` prefixes (BasicSR's saved format)."""
    return {k[7:] if k.startswith('module.') else k: v.cpu() for k, v in bare_model(net).state_dict().items()}


def save_networks(path: str, nets: Dict[str, nn.Module]) -> None:
    """One checkpoint file holding each network under its key (e.g. params / params_ema)."""
    atomic_save({key: network_state(net) for key, net in nets.items()}, path)


def save_training_state(path: str, epoch: int, current_iter: int, optimizers: list, schedulers: list,
                        **extra) -> None:
    """basicsr's resume file (epoch, iteration, optimizer and scheduler states) plus extra entries not None."""
    state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in optimizers],
             'schedulers': [s.state_dict() for s in schedulers]}
    state.update({key: value for key, value in extra.items() if value is not None})
    atomic_save(state, path)
