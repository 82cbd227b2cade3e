"""Every fix that basicsr 1.4.2 needs on torch 2.14 / torchvision 0.29, in one place, in this order.

Nothing in site-packages is edited: each fix replaces attributes of basicsr modules at import time
(``apply()`` is idempotent and runs from ``sdakd_basicsr/__init__.py`` before basicsr is first imported).
Each fix has a test in ``tests/test_compat.py`` that fails without it; docs/compat.md lists the patched names.

1. ``sys.modules['torchvision.transforms.functional_tensor']``: removed in torchvision 0.17, basicsr imports it.
2. ``RealESRGANModel.__init__`` / ``RealESRNetModel.__init__`` and their ``_dequeue_and_enqueue``: DiffJPEG,
   USMSharp and the training-pair queue were hard-coded to ``.cuda()``; now built on ``self.device``.
3. ``DiffJPEG.forward``: returns a contiguous tensor (its channels-last output broke ``filter2D``'s ``.view``
   for batch >= 2).
4. ``basicsr.train.load_resume_state``: loads onto the CPU (it used ``torch.cuda``) and looks for
   ``--auto_resume`` states under the experiment root instead of the CWD.
5. Launch glue (no patch, called by ``train.py``/``test.py``): torch 2 launchers pass ``--local-rank`` where
   basicsr's argparse expects ``--local_rank``; the root logger attaches a log file only once per process,
   ``reset_root_logger`` lets each run in a process write its own.
6. ``basicsr.archs.vgg_arch.vgg`` and ``VGG_PRETRAIN_PATH``: basicsr loaded one CWD-relative vgg19 file for
   *every* VGG type, or downloaded (offline: an opaque URLError); now the file of the requested type is
   looked for and a missing one is named (``losses/perceptual_loss.py``, ``build_vgg``).
7. ``fused_leaky_relu`` / ``upfirdn2d`` in ``basicsr.ops`` and ``basicsr.archs.stylegan2_arch``: the compiled
   extensions are not built by the PyPI sdist; exact pure-PyTorch paths (compiled ops still used on CUDA).
8. ``basicsr.utils.options.init_dist`` and ``BaseModel.model_to_device``: distributed training on CPU
   (backend from ``dist_params.backend``, gloo without CUDA, DDP without CUDA device ids) and Slurm from
   srun's variables (local rank from SLURM_LOCALID).
9. ``basicsr.train.create_train_val_dataloader``: the training loader it returns is wrapped in
   ``models.run_state.ResumableLoader``, which knows its position in the epoch, so that a resume continues the
   interrupted epoch with the saved random state instead of replaying it with fresh numbers.
10. ``basicsr.data.build_dataset`` (and its name in ``basicsr.train``): every dataset is wrapped in
   ``data.guarded_dataset.GuardedDataset``, so that an unreadable image names its file (stop or skip).
"""
from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
import sys
import warnings
from os import path as osp
from typing import Optional, Sequence

# lazy-imports: each fix imports what it patches when it is applied; basicsr must not load before fix 1, and
# the package's own modules import basicsr
_APPLIED = False


# --------------------------------------------------------------------------------------------- 1
def alias_functional_tensor() -> None:
    """Make ``torchvision.transforms.functional_tensor`` importable again (removed in torchvision 0.17)."""
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
    except ImportError:
        sys.modules[name] = importlib.import_module('torchvision.transforms._functional_tensor')


# --------------------------------------------------------------------------------------------- 2, 3
def _device_agnostic_realesrgan_models() -> None:
    from basicsr.models.realesrgan_model import RealESRGANModel
    from basicsr.models.realesrnet_model import RealESRNetModel
    from basicsr.utils import DiffJPEG, USMSharp

    from .distill.schema import DataKeys
    for cls in (RealESRGANModel, RealESRNetModel):
        if getattr(cls, '_sdakd_patched', False):
            continue
        parent = cls.__mro__[1]

        def __init__(self, opt, _cls=cls, _parent=parent):
            _parent.__init__(self, opt)
            self.jpeger = DiffJPEG(differentiable=False).to(self.device)
            self.usm_sharpener = USMSharp().to(self.device)
            self.queue_size = opt.get('queue_size', DataKeys.queue_size)  # basicsr's default, from the schema

        original_dequeue = cls._dequeue_and_enqueue

        def _dequeue_and_enqueue(self, _orig=original_dequeue):
            # allocate the pool where the batch lives; the original then finds it and skips its .cuda() init
            if not hasattr(self, 'queue_lr'):
                b, c, h, w = self.lq.size()
                if self.queue_size % b != 0:
                    raise ValueError(f'queue_size {self.queue_size} must be divisible by the batch size {b}')
                self.queue_lr = self.lq.new_zeros(self.queue_size, c, h, w)
                self.queue_gt = self.gt.new_zeros(self.queue_size, *self.gt.shape[1:])
                self.queue_ptr = 0
            return _orig(self)

        cls.__init__ = __init__
        cls._dequeue_and_enqueue = _dequeue_and_enqueue
        cls._sdakd_patched = True


def _contiguous_diffjpeg() -> None:
    from basicsr.utils.diffjpeg import DiffJPEG
    if getattr(DiffJPEG, '_sdakd_patched', False):
        return
    original_forward = DiffJPEG.forward

    def forward(self, x, quality):
        return original_forward(self, x, quality).contiguous()

    DiffJPEG.forward = forward
    DiffJPEG._sdakd_patched = True


# --------------------------------------------------------------------------------------------- 4
def load_resume_state(opt: dict) -> Optional[dict]:
    """Device-agnostic replacement for ``basicsr.train.load_resume_state``.

    ``--auto_resume`` looks in the experiment's own ``training_states`` folder (under the root path) and takes
    the newest *intact* state (``models.resume.newest_intact_state``); states are loaded onto the CPU (optimizers
    move their state to the parameters' device when loaded) and a damaged file is named, never a bare EOFError.
    """
    from basicsr.utils import check_resume

    from .models.resume import newest_intact_state, read_training_state
    if opt['auto_resume']:
        state_dir = opt['path'].get('training_states') or osp.join(
            opt.get('root_path', '.'), 'experiments', opt['name'], 'training_states')
        # not get_root_logger(): called before train_pipeline sets up the log file, it would stop that file. The
        # console gets the notes now, at the top of the run's output; the model repeats them into the log file.

        def warn(note: str) -> None:
            print(f'WARNING: {note}', file=sys.stderr, flush=True)
        found = newest_intact_state(state_dir, warn) if osp.isdir(state_dir) else None
        if found is None:
            return None
        opt['path']['resume_state'], resume_state = found
    elif opt['path'].get('resume_state'):
        resume_state = read_training_state(opt['path']['resume_state'])
    else:
        return None
    check_resume(opt, resume_state['iter'])
    return resume_state


def _resume_on_any_device() -> None:
    import basicsr.train
    basicsr.train.load_resume_state = load_resume_state


# --------------------------------------------------------------------------------------------- 5
def normalize_launcher_argv(argv: Sequence[str]) -> list:
    """Rewrite torch 2's ``--local-rank`` into the ``--local_rank`` flag that basicsr's argparse knows."""
    out = []
    for arg in argv:
        if arg == '--local-rank' or arg.startswith('--local-rank='):
            arg = '--local_rank' + arg[len('--local-rank'):]
        out.append(arg)
    if 'LOCAL_RANK' in os.environ and not any(a.startswith('--local_rank') for a in out):
        out += ['--local_rank', os.environ['LOCAL_RANK']]
    return out


def reset_root_logger() -> None:
    """basicsr's root logger is a process-wide singleton that attaches a log file only on its first call;
    forget it so that every run started in this process (stage after stage) writes its own train_*.log."""

    from basicsr.utils import logger as basicsr_logger
    log = logging.getLogger('basicsr')
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    basicsr_logger.initialized_logger.pop('basicsr', None)


# --------------------------------------------------------------------------------------------- 6
class _VGGFactories:
    """Stands in for ``torchvision.models.vgg`` inside ``basicsr.archs.vgg_arch``: ``vgg19(pretrained=True)``
    and friends resolve the weights file of *their* VGG type (losses/perceptual_loss.py, ``build_vgg``)."""

    def __getattr__(self, vgg_type: str):
        from torchvision.models import vgg as tv_vgg
        if not vgg_type.startswith('vgg'):
            return getattr(tv_vgg, vgg_type)
        from .losses.perceptual_loss import build_vgg
        return lambda pretrained=True, **_: build_vgg(vgg_type, None if pretrained else 'random')


def _local_vgg_weights() -> None:
    import basicsr.archs.vgg_arch as vgg_arch
    if isinstance(vgg_arch.vgg, _VGGFactories):
        return
    vgg_arch.vgg = _VGGFactories()
    # basicsr's CWD-relative vgg19 file would be used for every VGG type; build_vgg looks for the file of
    # the requested type instead (in the same folder, among others)
    vgg_arch.VGG_PRETRAIN_PATH = osp.join(os.devnull, 'use-sdakd_basicsr.losses.perceptual_loss.build_vgg')


# --------------------------------------------------------------------------------------------- 7
def fused_leaky_relu(x, bias, negative_slope: float = 0.2, scale: float = 2**0.5):
    """``leaky_relu(x + bias) * scale``: what basicsr's compiled ``fused_bias_act`` computes."""
    from torch.nn import functional as F
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * scale


def _pure_pytorch_stylegan_ops() -> None:
    import basicsr.archs.stylegan2_arch as stylegan2_arch

    # the packages re-export functions named like their submodules: reach the modules through sys.modules
    fused_act_pkg = importlib.import_module('basicsr.ops.fused_act')
    fused_act = sys.modules['basicsr.ops.fused_act.fused_act']
    upfirdn_pkg = importlib.import_module('basicsr.ops.upfirdn2d')
    upfirdn = sys.modules['basicsr.ops.upfirdn2d.upfirdn2d']
    if getattr(fused_act, '_sdakd_patched', False):
        return
    compiled_act = getattr(fused_act, 'fused_act_ext', None)
    compiled_upfirdn = getattr(upfirdn, 'upfirdn2d_ext', None)
    original_act, original_upfirdn, native = fused_act.fused_leaky_relu, upfirdn.upfirdn2d, upfirdn.upfirdn2d_native

    def leaky(x, bias, negative_slope=0.2, scale=2**0.5):
        if compiled_act is not None and x.is_cuda:
            return original_act(x, bias, negative_slope, scale)
        return fused_leaky_relu(x, bias, negative_slope, scale)

    def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
        if compiled_upfirdn is not None and x.is_cuda:
            return original_upfirdn(x, kernel, up, down, pad)
        return native(x, kernel, up, up, down, down, pad[0], pad[1], pad[0], pad[1])

    for module in (fused_act, fused_act_pkg, stylegan2_arch):
        module.fused_leaky_relu = leaky
    for module in (upfirdn, upfirdn_pkg, stylegan2_arch):
        module.upfirdn2d = upfirdn2d
    fused_act._sdakd_patched = True


# --------------------------------------------------------------------------------------------- 8
_dist_backend: Optional[str] = None  # dist_params.backend of the option file being run (set by train.py)


def set_dist_backend(backend: Optional[str]) -> None:
    global _dist_backend
    _dist_backend = backend


def pick_dist_backend(requested: Optional[str] = None) -> str:
    """The requested backend, or nccl on GPU / gloo on CPU; nccl without CUDA falls back to gloo."""

    import torch
    backend = requested or _dist_backend or ('nccl' if torch.cuda.is_available() else 'gloo')
    if backend == 'nccl' and not torch.cuda.is_available():
        warnings.warn('dist_params.backend nccl needs CUDA; using gloo on this CPU-only machine')
        backend = 'gloo'
    return backend


def init_dist(launcher: str, backend: Optional[str] = None, **kwargs) -> None:
    """basicsr's init_dist with the backend from the options and no CUDA calls on CPU."""
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp
    backend = pick_dist_backend(backend)
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f'Invalid launcher type: {launcher} (pytorch or slurm)')
    if mp.get_start_method(allow_none=True) is None:
        mp.set_start_method('spawn')
    if launcher == 'slurm':
        slurm_environment(kwargs.get('port'))
    if backend == 'nccl':
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])) % torch.cuda.device_count())
    dist.init_process_group(backend=backend)


def slurm_environment(port: Optional[int] = None) -> None:
    """torch.distributed's env:// variables from srun's: rank SLURM_PROCID, world SLURM_NTASKS, local rank
    SLURM_LOCALID, master = first host of SLURM_NODELIST (``scontrol show hostname``; a plain host name
    or list needs no scontrol), port = ``dist_params.port`` > MASTER_PORT > 29500 (basicsr's convention)."""
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST') if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher slurm needs {", ".join(missing)} in the environment: start the job '
                           f'with srun (e.g. srun -n 4 python sdakd_basicsr/train.py -opt ... --launcher slurm)')
    node_list = os.environ['SLURM_NODELIST']
    if '[' not in node_list:
        master = node_list.split(',')[0]
    elif shutil.which('scontrol'):
        master = subprocess.run(['scontrol', 'show', 'hostname', node_list], capture_output=True, text=True,
                                check=True).stdout.split()[0]
    else:
        raise RuntimeError(f'SLURM_NODELIST={node_list} is a compressed host list and scontrol is not on PATH '
                           f'to expand it; set MASTER_ADDR yourself or run inside the Slurm allocation')
    os.environ.setdefault('MASTER_ADDR', master)
    if port:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', os.environ['SLURM_PROCID'])


def model_to_device(self, net):
    """``BaseModel.model_to_device``: DDP with CUDA device_ids on GPU, without on CPU."""
    import torch
    from torch.nn.parallel import DataParallel, DistributedDataParallel
    net = net.to(self.device)
    if self.opt['dist']:
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        net = DistributedDataParallel(net, device_ids=device_ids,
                                      find_unused_parameters=self.opt.get('find_unused_parameters', False))
    elif self.opt['num_gpu'] > 1:
        net = DataParallel(net)
    return net


def _distributed_on_any_device() -> None:
    import basicsr.utils.options as options
    from basicsr.models.base_model import BaseModel
    options.init_dist = init_dist
    BaseModel.model_to_device = model_to_device


# --------------------------------------------------------------------------------------------- 9
def _resumable_train_loader() -> None:
    import basicsr.train
    original = basicsr.train.create_train_val_dataloader
    if getattr(original, '_sdakd_patched', False):
        return

    def create_train_val_dataloader(opt, logger):
        from .models.run_state import ResumableLoader
        train_loader, *rest = original(opt, logger)
        return (ResumableLoader(train_loader) if train_loader is not None else None, *rest)
    create_train_val_dataloader._sdakd_patched = True
    basicsr.train.create_train_val_dataloader = create_train_val_dataloader


# --------------------------------------------------------------------------------------------- 10
def _guarded_datasets() -> None:
    import basicsr.data
    import basicsr.train
    original = basicsr.data.build_dataset
    if getattr(original, '_sdakd_patched', False):
        return

    def build_dataset(dataset_opt):
        from .data.guarded_dataset import GuardedDataset
        return GuardedDataset(original(dataset_opt), dataset_opt)
    build_dataset._sdakd_patched = True
    basicsr.data.build_dataset = build_dataset
    basicsr.train.build_dataset = build_dataset


# ---------------------------------------------------------------------------------------------
def apply() -> None:
    """Apply every fix once; safe to call again."""
    global _APPLIED
    if _APPLIED:
        return
    alias_functional_tensor()
    _device_agnostic_realesrgan_models()
    _contiguous_diffjpeg()
    _resume_on_any_device()
    _local_vgg_weights()
    _pure_pytorch_stylegan_ops()
    _distributed_on_any_device()
    _resumable_train_loader()
    _guarded_datasets()
    _APPLIED = True
