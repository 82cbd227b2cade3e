"""Every fix that basicsr 1.4.2 needs on torch 2.14 / torchvision 0.29, in one place.

Nothing in site-packages is edited: each fix replaces one attribute of a basicsr module at import time
(``apply()`` is idempotent and runs from ``sdakd_basicsr/__init__.py`` before basicsr is first imported).
Each fix is covered by a test in ``tests/test_compat.py`` that fails without it.

1. ``torchvision.transforms.functional_tensor`` was removed in torchvision 0.17; basicsr imports it.
2. ``RealESRGANModel`` / ``RealESRNetModel`` hard-code ``.cuda()`` for DiffJPEG, USMSharp and the
   training-pair queue: build them on ``self.device`` instead.
3. ``DiffJPEG`` returns a channels-last tensor that ``filter2D``'s ``.view`` rejects for batch >= 2.
4. ``basicsr.train.load_resume_state`` maps the state onto CUDA (crashes on CPU) and looks for
   ``--auto_resume`` states relative to the CWD instead of the experiment root.
5. torch 2 launchers pass ``--local-rank``; basicsr's argparse expects ``--local_rank``. The root logger
   attaches a log file only once per process: ``reset_root_logger`` lets each run write its own.
8. Distributed training on CPU: ``init_dist`` hard-codes nccl and ``torch.cuda`` device selection, and
   ``model_to_device`` passes CUDA ``device_ids`` to DDP. The backend now comes from ``dist_params.backend``
   (nccl on GPU, gloo on CPU; nccl without CUDA falls back to gloo with a warning), and CPU models are
   wrapped with ``device_ids=None``. Slurm: rank/world/local rank/master from srun's variables, no CUDA
   calls on CPU, the local rank from SLURM_LOCALID (basicsr used SLURM_PROCID % GPU count).
7. ``basicsr.ops`` (fused LeakyReLU, upfirdn2d) need compiled extensions that the PyPI sdist does not build:
   StyleGAN2-type networks (GCFSR) get exact pure-PyTorch paths; a compiled op is used when present on CUDA.
6. VGG weights for ``PerceptualLoss``: basicsr loads a CWD-relative vgg19 file for *every* VGG type, or
   downloads; offline that is an opaque URLError. We resolve the right file per VGG type (an explicit
   path, ``experiments/pretrained_models/<file>``, or the torch hub cache), allow explicit random weights,
   and fail with an error that names the file and where to put it.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
from os import path as osp
from typing import Iterator, Optional, Sequence

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

    for cls in (RealESRGANModel, RealESRNetModel):
        if getattr(cls, '_sdakd_patched', False):
            continue
        parent = cls.__mro__[1]

        def __init__(self, opt, _cls=cls, _parent=parent):
            _parent.__init__(self, opt)
            self.jpeger = DiffJPEG(differentiable=False).to(self.device)
            self.usm_sharpener = USMSharp().to(self.device)
            self.queue_size = opt.get('queue_size', 180)

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

    ``--auto_resume`` looks in the experiment's own ``training_states`` folder (under the root path), and
    the state is loaded onto the CPU; optimizers move their state to the parameters' device when loaded.
    """
    import torch
    from basicsr.utils import check_resume, scandir

    resume_state_path = None
    if opt['auto_resume']:
        state_dir = opt['path'].get('training_states') or osp.join(
            opt.get('root_path', '.'), 'experiments', opt['name'], 'training_states')
        if osp.isdir(state_dir):
            iters = [int(float(v[:-len('.state')])) for v in scandir(state_dir, suffix='.state', recursive=False)]
            if iters:
                resume_state_path = osp.join(state_dir, f'{max(iters)}.state')
                opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']
    if resume_state_path is None:
        return None
    if not osp.isfile(resume_state_path):
        raise FileNotFoundError(f'path.resume_state: no training state at {resume_state_path}')
    resume_state = torch.load(resume_state_path, map_location='cpu')
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
    import logging
    from basicsr.utils import logger as basicsr_logger
    log = logging.getLogger('basicsr')
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    basicsr_logger.initialized_logger.pop('basicsr', None)


# --------------------------------------------------------------------------------------------- 6
VGG_WEIGHTS_DIR = osp.join('experiments', 'pretrained_models')
_vgg_weights_override: Optional[str] = None  # None: search; 'random': no weights; else a file path


@contextlib.contextmanager
def vgg_weights(source: Optional[str]) -> Iterator[None]:
    """Within the block, VGG feature extractors take their weights from ``source``.

    ``None`` keeps the default search, ``'random'`` builds VGG without pretrained weights (tests only:
    a perceptual loss on random features is not the recipe's), anything else is a ``.pth`` file path.
    """
    global _vgg_weights_override
    previous, _vgg_weights_override = _vgg_weights_override, source
    try:
        yield
    finally:
        _vgg_weights_override = previous


def _vgg_weight_enum(vgg_type: str):
    from torchvision.models import vgg as tv_vgg
    enum_name = vgg_type.upper() + '_Weights'  # vgg19 -> VGG19_Weights, vgg19_bn -> VGG19_BN_Weights
    return getattr(tv_vgg, enum_name).IMAGENET1K_V1


def vgg_weights_filename(vgg_type: str) -> str:
    """The file name torchvision downloads for ``vgg_type`` (e.g. ``vgg19-dcbb9e9d.pth``)."""
    return osp.basename(_vgg_weight_enum(vgg_type).url)


def _materialized(factory, state_dict):
    """Build VGG on the meta device and materialise what is needed: building the 100M-parameter classifier
    just to throw it away (basicsr keeps only ``features``) costs seconds per loss."""
    import torch
    from torch import nn
    with torch.device('meta'):
        net = factory(weights=None)
    if state_dict is not None:
        net.load_state_dict(state_dict, assign=True)
        return net
    net.features.to_empty(device='cpu')
    for m in net.features.modules():  # torchvision's VGG initialisation, for the features only
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()
    return net


def build_vgg(vgg_type: str, pretrained: bool = True):
    """Build a torchvision VGG; pretrained weights come from a local file, the hub cache or a download."""
    import torch
    from torchvision.models import vgg as tv_vgg

    factory = getattr(tv_vgg, vgg_type)
    source = _vgg_weights_override
    if not pretrained or source == 'random':
        # A fixed seed: every DDP rank (seeded with manual_seed + rank by basicsr) must build the same loss
        # network, or the ranks optimise different objectives (this made 2-rank runs differ from 1-rank ones).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return _materialized(factory, None)
    filename = vgg_weights_filename(vgg_type)
    if source is not None:
        if not osp.isfile(source):
            raise FileNotFoundError(f'vgg_weights: {source} does not exist (expected the torchvision file '
                                    f'{filename} for {vgg_type})')
        candidates = [source]
    else:
        candidates = [osp.join(VGG_WEIGHTS_DIR, filename), osp.join(torch.hub.get_dir(), 'checkpoints', filename)]
    for candidate in candidates:
        if osp.isfile(candidate):
            return _materialized(factory, torch.load(candidate, map_location='cpu'))
    weights = _vgg_weight_enum(vgg_type)
    try:
        return factory(weights=weights)
    except Exception as err:  # offline: URLError; a proxy: HTTPError; a truncated download: RuntimeError
        raise FileNotFoundError(
            f'The perceptual loss needs the ImageNet weights of {vgg_type}, file {filename}, which is not on '
            f'disk and could not be downloaded ({type(err).__name__}: {err}). Download {weights.url} and put '
            f'it at {osp.abspath(candidates[0])} (or {candidates[1]}), or point the loss option '
            f'`vgg_weights` (type VGGPerceptualLoss) at the file.') from err


class _VGGFactories:
    """Stands in for ``torchvision.models.vgg`` inside ``basicsr.archs.vgg_arch``."""

    def __getattr__(self, vgg_type: str):
        if not vgg_type.startswith('vgg'):
            from torchvision.models import vgg as tv_vgg
            return getattr(tv_vgg, vgg_type)
        return lambda pretrained=True, **_: build_vgg(vgg_type, pretrained)


def _local_vgg_weights() -> None:
    import basicsr.archs.vgg_arch as vgg_arch
    if isinstance(vgg_arch.vgg, _VGGFactories):
        return
    vgg_arch.vgg = _VGGFactories()
    # basicsr's own CWD-relative vgg19 file shortcut would be used for every VGG type; build_vgg looks
    # for the right file per type instead (the same folder included).
    vgg_arch.VGG_PRETRAIN_PATH = osp.join(os.devnull, 'use-sdakd_basicsr.compat.build_vgg')


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
    import warnings
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
    import shutil
    import subprocess
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
    _APPLIED = True
