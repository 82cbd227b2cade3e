"""The rest of the option file: the blocks BasicSR reads (top level, ``logger``, ``val``, ``path``, ``datasets``,
``network_*``, losses, optimizers, scheduler), checked with the same schema machinery as ``sdakd:``/``train:``
(``schema.option`` / ``schema.parse_block``) before anything touches the disk.

Where BasicSR has no list of keys, the list comes from the code that will read them, so that user-registered
classes are checked as well as BasicSR's own:

- ``network_*``, ``*_opt`` losses, optimizers and schedulers: the constructor's signature (a ``**kwargs``
  constructor accepts anything);
- ``datasets.*``: the keys the dataset class's source reads from its option dict (``opt['key']`` /
  ``opt.get('key')`` in the class and its bases) plus the data-loader keys of ``basicsr.data``.

Every message names the key path and, where one is close, the key that was probably meant.
"""
import inspect
import re
from dataclasses import dataclass, make_dataclass
from functools import lru_cache
from typing import Any, Dict, Iterable, List, Optional, Set

import torch

import basicsr.models.lr_scheduler as basicsr_schedulers
from basicsr.archs.vgg_arch import NAMES
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY

from ..data.degradation import degradation_settings
from ..data.degradation_presets import kernel_defaults, synthesis_defaults
from .data_checks import check_data_files, check_data_sizes, check_file_ends, decode_all_images
from .schema import (NUMBER_AS_STRING_HINT, DataChecks, DataKeys, OptionError, TrainBlock, check_value, did_you_mean,
                     option, parse_block, split_loss_block)
from .stage_policy import NETWORK_KEYS


def check_unknown_keys(where: str, keys: Iterable[str], known: Iterable[str]) -> None:
    known = sorted(set(known))
    for key in keys:
        if key not in known:
            raise OptionError(f'{where}.{key}: unknown key{did_you_mean(key, known)}; valid keys: {known}'
                              if where else f'{key}: unknown top-level key{did_you_mean(key, known)}')


# ------------------------------------------------------------------------------------------ plain blocks
@dataclass
class LoggerBlock:
    """``logger:`` — BasicSR's logging and checkpoint frequencies."""
    print_freq: int = option(required=True, minimum=1, help='iterations between log lines')
    save_checkpoint_freq: int = option(required=True, minimum=1, help='iterations between checkpoints and '
                                       'training states')
    use_tb_logger: bool = option(False, help='TensorBoard logging (needed by wandb)')
    wandb: Optional['WandbBlock'] = option(None, help='Weights & Biases logging (keys below)')


@dataclass
class WandbBlock:
    """``logger.wandb:`` — Weights & Biases (needs use_tb_logger: true)."""
    project: Optional[str] = option(None, help='the wandb project (~: no wandb)')
    resume_id: Optional[str] = option(None, help='the wandb run to resume')
    entity: Optional[str] = option(None, help='the wandb entity (team)')


@dataclass
class ValBlock:
    """``val:`` — validation, active when a ``datasets.val*`` entry exists."""
    val_freq: int = option(required=True, minimum=1, help='iterations between validations')
    save_img: bool = option(False, help='write the validation outputs under visualization/')
    metrics: Optional[dict] = option(None, help='name: {type: calculate_psnr | calculate_ssim | calculate_niqe, '
                                     'crop_border, test_y_channel, better}')
    suffix: Optional[str] = option(None, help='suffix of saved validation images')
    pbar: bool = option(False, help='a progress bar during validation')


@dataclass
class DistParams:
    """``dist_params:`` — distributed training."""
    backend: str = option('nccl', choices=('nccl', 'gloo', 'mpi'), help='torch.distributed backend')
    port: int = option(29500, minimum=0, help='master port (Slurm and --launcher pytorch; 0: a free one)')


@dataclass
class LoaderKeys:
    """The keys of every ``datasets.<phase>`` entry that basicsr's data loader and train loop read."""
    name: str = option(required=True, help='a label for logs')
    type: str = option(required=True, help='a registered dataset class')
    phase: Optional[str] = option(None, help='set by BasicSR from the entry name')
    scale: Optional[int] = option(None, minimum=1, help='set by BasicSR from the top-level scale')
    batch_size_per_gpu: Optional[int] = option(None, minimum=1, help='training batch per GPU (process)')
    num_worker_per_gpu: Optional[int] = option(None, minimum=0, help='data-loader workers per GPU (process)')
    use_shuffle: bool = option(True, help='shuffle the training set')
    dataset_enlarge_ratio: int = option(1, minimum=1, help='repeat the training set this often per epoch')
    prefetch_mode: Optional[str] = option(None, choices=(None, 'cpu', 'cuda'), help='~, cpu or cuda')
    num_prefetch_queue: int = option(1, minimum=1, help='prefetch queue length (prefetch_mode cpu)')
    pin_memory: bool = option(False, help='pinned host memory (needed by prefetch_mode cuda)')
    persistent_workers: bool = option(False, help='keep the loader workers between epochs')
    io_backend: Optional[dict] = option(None, help='{type: disk | lmdb | memcached}')
    gt_size: Optional[int] = option(None, minimum=1, help='training GT crop size (pixels)')
    use_hflip: bool = option(False, help='random horizontal flips (and vertical with use_rot)')
    use_rot: bool = option(False, help='random 90-degree rotations and vertical flips')
    on_bad_image: str = option('stop', choices=('stop', 'skip'), help='an image that cannot be read during '
                               'training: stop naming the file, or skip it with a warning')


@dataclass
class CacheVariantKeys:
    """The LR variants the teacher cache holds per image and how a visit draws one (docs/training.md)."""
    degraded: int = option(required=True, minimum=0, help='K: seeded Real-ESRGAN degradations of each GT image, the '
                           'teacher run once on each (0: the clean LR only)')
    seed: int = option(required=True, minimum=0, help='the seed of the degradations (each image and variant gets '
                       'its own seed from it; the same seed gives the same LR on any machine)')
    clean_ratio: float = option(required=True, minimum=0, help='probability that a visit draws the clean LR on disk '
                                'instead of a degraded variant (0: the clean LR is neither cached nor drawn)')
    degradation: Optional[dict] = option(None, help="overrides of Real-ESRGAN x4plus's degradation settings (the "
                                         'top-level synthesis keys and the blur-kernel keys), e.g. {jpeg_range: '
                                         '[50, 95]}; ~ = x4plus as it is')


@dataclass
class PairedKeys:
    """``PairedImageDataset`` (and subclasses): an LR folder next to a GT folder."""
    dataroot_gt: str = option(required=True, help='GT folder (or lmdb)')
    dataroot_lq: str = option(required=True, help='LR folder (or lmdb)')
    meta_info_file: Optional[str] = option(None, help='one GT file name per line')
    filename_tmpl: str = option('{}', help="LR name from the GT name, e.g. '{}x4'")
    mean: Optional[List[float]] = option(None, help='per-channel mean to subtract')
    std: Optional[List[float]] = option(None, help='per-channel std to divide by')
    color: Optional[str] = option(None, choices=(None, 'y'), help='y: luminance only')
    teacher_cache: Optional[str] = option(None, help='TeacherCachedPairedDataset: the cache file')
    cache_variants: Optional[CacheVariantKeys] = option(None, help='TeacherCachedPairedDataset: the LR variants of '
                                                        'the cache (keys below; ~ = the clean LR only)')


# The blur-kernel keys of the synthesis: names and values from data/degradation_presets.py (the one place); per
# key without its round suffix (2): help, and the smallest allowed number
_KERNEL_KEYS = {'blur_kernel_size': ('kernel size (odd)', 3), 'kernel_list': ('kernel types', None),
                'kernel_prob': ('their probabilities', None), 'sinc_prob': ('sinc-kernel probability', 0),
                'blur_sigma': ('[low, high]', None), 'betag_range': ('[low, high]', None),
                'betap_range': ('[low, high]', None), 'final_sinc_prob': ('final sinc-filter probability', 0)}
KERNELS = tuple(kernel_defaults()['kernel_list'])  # the kernel types Real-ESRGAN's synthesis draws


def _kernel_field(key: str, value: Any) -> tuple:
    """(name, type, schema field) of one kernel key, its type read from Real-ESRGAN's value."""
    help, minimum = _KERNEL_KEYS[key.rstrip('2')]
    if isinstance(value, list):
        tp = List[str] if isinstance(value[0], str) else List[float]
    else:
        tp = type(value)
    return key, tp, option(value, minimum=minimum, help=help)


SynthesisKeys = make_dataclass('SynthesisKeys', [
    ('dataroot_gt', str, option(required=True, help='GT folder (or lmdb)')),
    ('meta_info', Optional[str], option(None, help='one GT path per line, relative to dataroot_gt')),
    ('crop_pad_size', int, option(400, minimum=1, help='GT crop (padded if smaller) before the synthesis')),
    *(_kernel_field(key, value) for key, value in kernel_defaults().items())])
SynthesisKeys.__doc__ = ('``RealESRGANDataset`` (and ``RealESRGANCropDataset``): GT images and the blur kernels of '
                         'the synthesis (the second degradation\'s keys end in 2).')


TYPED_DATASETS = {'PairedImageDataset': PairedKeys, 'RealESRGANDataset': SynthesisKeys}


def _typed_keys(cls) -> Optional[type]:
    for klass in cls.__mro__:
        if klass.__name__ in TYPED_DATASETS:
            return TYPED_DATASETS[klass.__name__]
    return None


def _check_synthesis(values: SynthesisKeys, where: str) -> None:
    for suffix in ('', '2'):
        size = getattr(values, f'blur_kernel_size{suffix}')
        if size % 2 == 0:
            raise OptionError(f'{where}.blur_kernel_size{suffix} must be odd, got {size}')
        kinds, probs = getattr(values, f'kernel_list{suffix}'), getattr(values, f'kernel_prob{suffix}')
        for kind in kinds:
            if kind not in KERNELS:
                raise OptionError(f'{where}.kernel_list{suffix}: unknown kernel {kind!r}{did_you_mean(kind, KERNELS)}; '
                                  f'choose from {list(KERNELS)}')
        if len(probs) != len(kinds) or min(probs) < 0 or abs(sum(probs) - 1) > 1e-3:
            raise OptionError(f'{where}.kernel_prob{suffix} must be {len(kinds)} probabilities (one per '
                              f'kernel_list{suffix} entry) summing to 1, got {probs}')
        for key in ('blur_sigma', 'betag_range', 'betap_range'):
            low_high = getattr(values, key + suffix)
            if len(low_high) != 2 or low_high[0] > low_high[1] or low_high[0] < 0:
                raise OptionError(f'{where}.{key}{suffix} must be [low, high] with 0 <= low <= high, got {low_high}')
        if getattr(values, f'sinc_prob{suffix}') > 1:
            raise OptionError(f'{where}.sinc_prob{suffix} is a probability (<= 1)')
    if values.final_sinc_prob > 1:
        raise OptionError(f'{where}.final_sinc_prob is a probability (<= 1)')


LOADER_KEYS = set(LoaderKeys.__dataclass_fields__)
# top-level keys whose value is a mapping (every `network_*` key too): checked first, so that no later check meets
# a string or a list where it reads keys
MAPPING_BLOCKS = ('datasets', 'path', 'train', 'val', 'logger', 'dist_params', 'sdakd')
BLOCKS = {'logger': LoggerBlock, 'val': ValBlock, 'dist_params': DistParams}
# keys basicsr's parse_options (and the pre-flight) add to the option dict at run time, at the top level and in
# `path:`; no user writes them, and they do not change what a run does
RUNTIME_KEYS = ('is_train', 'dist', 'rank', 'world_size', 'auto_resume', 'root_path')
PATH_FIXED = {'resume_state', 'experiments_root', 'models', 'training_states', 'log', 'visualization',
              'results_root', 'ignore_resume_networks', 'root'}
# Real-ESRGAN's top-level synthesis keys, by the kind of their preset value: a probability, a [low, high] range or
# three probabilities (up, down, keep)
# the top-level synthesis keys that make the LR (data/degradation.py decides which; the usm flags are DataKeys)
DEGRADATION_KEYS = {k: v for k, v in degradation_settings().items() if k in synthesis_defaults()}


@dataclass
class TopLevel:
    """The top-level keys of every BasicSR option file."""
    name: str = option(required=True, help='the experiment name (its folder under experiments/)')
    model_type: str = option(required=True, help='a registered model class, e.g. SDAKDModel')
    scale: int = option(required=True, minimum=1, help='the upscaling factor of data, student and teacher')
    num_gpu: Any = option('auto', help='auto (every visible GPU, else the CPU) or a whole number (0: the CPU)')
    manual_seed: Optional[int] = option(None, minimum=0, help='the random seed (~: a random one, logged)')
    find_unused_parameters: bool = option(False, help='DDP: parameters that get no gradient are allowed')
    use_static_graph: bool = option(False, help='DDP: the static-graph optimisation')
    high_order_degradation: bool = option(True, help="Real-ESRGAN's on-the-fly second-order degradations "
                                          '(false: the dataset supplies LR images)')
    gt_size: Optional[int] = option(None, minimum=1, help='GT crop after the synthesis')


TOP_LEVEL = (set(TopLevel.__dataclass_fields__) | set(DataKeys.__dataclass_fields__) | set(DEGRADATION_KEYS)
             | set(MAPPING_BLOCKS) | set(RUNTIME_KEYS))


# ------------------------------------------------------------------------------------------ registries
def _registered(registry, kind: str, name: Any, where: str, keys: Iterable[str] = ()):
    if not isinstance(name, str):
        raise OptionError(f'{where}.type must be the name of a registered {kind}, got {name!r}' if name is not None
                          else f'{where}.type is required (the {kind} to build); keys given: {sorted(keys)}')
    for candidate in (name, f'{name}_basicsr'):  # basicsr's lookup tries both (and prints when it needs the 2nd)
        if candidate in registry._obj_map:
            return registry._obj_map[candidate]
    raise OptionError(f'{where}.type: no {kind} named {name!r} is registered{did_you_mean(name, registry._obj_map)}')


def _check_signature(obj, kwargs: Dict[str, Any], where: str, skip: Iterable[str] = (),
                     ignores_extra: bool = False) -> Set[str]:
    """Keys of ``kwargs`` against ``obj``'s constructor; returns its parameter names (empty: any accepted).
    ``ignores_extra``: ``obj`` takes ``**kwargs`` only to ignore them (basicsr's metrics), so they are errors."""
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return set()
    if not ignores_extra and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return set()
    names = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {'self'}
    for key in kwargs:
        if key not in names and key not in skip:
            raise OptionError(f'{where}.{key}: {getattr(obj, "__name__", obj)} takes no such argument'
                              f'{did_you_mean(key, names)}; it takes {sorted(names)}')
    for key, value in kwargs.items():  # a value of another kind than the default's (bool, number, string)
        default = params[key].default if key in params else None
        _same_kind(value, default, f'{where}.{key}')
        if key.endswith('weight') and isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise OptionError(f'{where}.{key} must be >= 0, got {value!r}')
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n != 'self'
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in kwargs and n not in skip]
    if required:
        raise OptionError(f'{where}: {getattr(obj, "__name__", obj)} needs {required}')
    return names


def _same_kind(value: Any, default: Any, where: str) -> None:
    if value is None or default is None or default is inspect.Parameter.empty:
        return
    if isinstance(default, (list, tuple)):  # `betas: 0.9` where `betas: [0.9, 0.99]` is meant
        if not isinstance(value, (list, tuple)):
            raise OptionError(f'{where} must be a list such as {list(default)}, got {value!r}')
    elif isinstance(default, dict):
        if not isinstance(value, dict):
            raise OptionError(f'{where} must be a mapping, got {value!r}')
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise OptionError(f'{where} must be true or false, got {value!r}')
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = NUMBER_AS_STRING_HINT if isinstance(value, str) else ''
            raise OptionError(f'{where} must be a number, got {value!r}{hint}')
    elif isinstance(default, str) and not isinstance(value, str):
        raise OptionError(f'{where} must be a string, got {value!r}')


@lru_cache(maxsize=None)
def keys_read_by(cls) -> Optional[frozenset]:
    """The option keys a dataset class reads, from its source and its bases' (None: source not available)."""
    keys: Set[str] = set()
    pattern = re.compile(r"""\bopt(?:\[\s*|\.get\(\s*)['"](\w+)['"]""")
    for klass in cls.__mro__:
        if klass.__module__.startswith(('torch.', 'builtins')) or klass is object:
            continue
        try:
            keys.update(pattern.findall(inspect.getsource(klass)))
        except (OSError, TypeError):
            return None
    return frozenset(keys)


# ------------------------------------------------------------------------------------------ the checks
def _number(value: Any, where: str, low: Optional[float] = None, high: Optional[float] = None,
            low_open: bool = False) -> float:
    value = check_value(value, float, where)
    if low is not None and (value <= low if low_open else value < low):
        raise OptionError(f'{where} must be {">" if low_open else ">="} {low:g}, got {value:g}')
    if high is not None and value > high:
        raise OptionError(f'{where} must be <= {high:g}, got {value:g}')
    return value


def check_degradations(opt: dict, where: str = '') -> None:
    """The synthesis keys of ``opt`` (the top level, or a block at ``where``) against the kind of x4plus's value."""
    for key, preset in DEGRADATION_KEYS.items():
        if key not in opt:
            continue
        name = f'{where}.{key}' if where else key
        if not isinstance(preset, list):
            _number(opt[key], name, 0, 1)
            continue
        value = check_value(opt[key], List[float], name)
        if len(preset) == 2 and (len(value) != 2 or value[0] > value[1]):
            raise OptionError(f'{name} must be [low, high] with low <= high, got {opt[key]!r}')
        if len(preset) == 3 and (len(value) != 3 or min(value) < 0 or abs(sum(value) - 1) > 1e-6):
            raise OptionError(f'{name} must be three probabilities (up, down, keep) summing to 1, got {opt[key]!r}')


def check_cache_variants(values: CacheVariantKeys, where: str, cache: Optional[str]) -> None:
    """``cache_variants``: a probability, at least one variant, and degradation overrides that name x4plus's keys
    with values of their kind."""
    if cache is None:
        raise OptionError(f'{where} describes the teacher cache, but there is no teacher_cache file: set '
                          f'{where.rsplit(".", 1)[0]}.teacher_cache')
    _number(values.clean_ratio, f'{where}.clean_ratio', 0, 1)
    if values.degraded == 0 and values.clean_ratio == 0:
        raise OptionError(f'{where}: degraded 0 and clean_ratio 0 leave no LR to train on; set degraded >= 1 or '
                          'clean_ratio > 0')
    overrides = values.degradation or {}
    known = sorted(set(DEGRADATION_KEYS) | set(kernel_defaults()))
    check_unknown_keys(f'{where}.degradation', overrides, known)
    check_degradations(overrides, f'{where}.degradation')
    kernels = {k: v for k, v in overrides.items() if k in kernel_defaults()}
    if kernels:
        _check_synthesis(parse_block(SynthesisKeys, dict(kernels, dataroot_gt='-'), f'{where}.degradation'),
                         f'{where}.degradation')


def check_networks(opt: dict, label: Optional[str] = None) -> None:
    for key, spec in opt.items():
        if not key.startswith('network_') or spec is None:
            continue
        key = label or key
        cls = _registered(ARCH_REGISTRY, 'architecture', spec.get('type'), key, spec)
        kwargs = {k: v for k, v in spec.items() if k != 'type'}
        names = _check_signature(cls, kwargs, key, skip=getattr(cls, 'filled_in_by_model', ()))
        for name, value in kwargs.items():
            if re.match(r'(num_|.*_ch$|.*_feat$|.*channels$)', name) and value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise OptionError(f'{key}.{name} must be a positive whole number, got {value!r}')
        # RRDBNet's `scale`; SRVGGNetCompact's, EDSR's and other BasicSR generators' `upscale`
        scale_key = next((k for k in ('scale', 'upscale') if k in names), None)
        if scale_key and key != 'network_adapters':
            scale = spec.get(scale_key, inspect.signature(cls).parameters[scale_key].default)
            if key in ('network_g', label) and isinstance(scale, int) and scale != opt.get('scale'):
                raise OptionError(f'{key}.{scale_key} is {scale} but the top-level scale is {opt.get("scale")}: '
                                  'student and teacher must upscale by the data\'s factor')


def check_training_blocks(opt: dict) -> None:
    """``*_opt`` losses, optimizers and the scheduler against their constructors; weights and rates in range."""
    train = opt.get('train')
    if not isinstance(train, dict):
        return
    for key, spec in train.items():
        where = f'train.{key}'
        if key.endswith('_opt') and spec is not None:
            if not isinstance(spec, dict):
                raise OptionError(f'{where} must be a mapping with a `type`, got {spec!r}')
            try:
                spec = split_loss_block(key, spec)[1]
            except (KeyError, ValueError) as err:
                raise OptionError(str(err).strip('"')) from err
            cls = _registered(LOSS_REGISTRY, 'loss', spec.get('type'), where, spec)
            _check_signature(cls, {k: v for k, v in spec.items() if k != 'type'}, where)
            if 'loss_weight' in spec:
                _number(spec['loss_weight'], f'{where}.loss_weight', 0)
            _check_layer_weights(spec, where)
        elif key.startswith('optim_') and spec is not None:
            _check_optimizer(spec, where)
        elif key == 'scheduler' and spec is not None:
            _check_scheduler(spec, where)
    if 'ema_decay' in train:
        decay = _number(train['ema_decay'], 'train.ema_decay', 0)
        if decay >= 1:
            raise OptionError(f'train.ema_decay must be below 1 (0 = no EMA; Real-ESRGAN 0.999), got {decay:g}: at 1 '
                              'the EMA copy never moves')
    for key in ('total_iter', 'warmup_iter'):
        if key in train:
            check_value(train[key], int, f'train.{key}')


def _check_layer_weights(spec: dict, where: str) -> None:
    """Perceptual losses: each tapped layer is a layer of the chosen VGG, with a weight >= 0."""
    layers = spec.get('layer_weights')
    if layers is None:
        return
    if not isinstance(layers, dict) or not layers:
        raise OptionError(f'{where}.layer_weights must map VGG layer names to weights, got {layers!r}')
    names = NAMES.get(str(spec.get('vgg_type', 'vgg19')).replace('_bn', ''), ())
    for layer, weight in layers.items():
        if names and layer not in names:
            raise OptionError(f'{where}.layer_weights.{layer}: no such layer in {spec.get("vgg_type", "vgg19")}'
                              f'{did_you_mean(str(layer), names)}')
        _number(weight, f'{where}.layer_weights.{layer}', 0)


def _required_type(spec: dict, where: str) -> Any:
    if 'type' not in spec:
        raise OptionError(f'{where}.type is required; keys given: {sorted(spec)}')
    return spec['type']


def _check_optimizer(spec: dict, where: str) -> None:
    name = _required_type(spec, where)
    cls = getattr(torch.optim, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise OptionError(f'{where}.type: {name!r} is not a torch.optim optimizer'
                          f'{did_you_mean(str(name), dir(torch.optim))}')
    _check_signature(cls, {k: v for k, v in spec.items() if k != 'type'}, where, skip=('params',))
    if 'lr' not in spec:
        raise OptionError(f'{where}.lr is required')
    _number(spec['lr'], f'{where}.lr', 0, low_open=True)  # a string ('1e-4' in YAML) is refused with the fix
    try:  # the optimizer's own argument checks (betas, eps, ...) now, on a stand-in parameter
        kwargs = {k: v for k, v in spec.items() if k not in ('type', 'lr')}
        if isinstance(kwargs.get('betas'), (list, tuple)):  # as optimizer_options passes them: [0, 0.99] as floats
            kwargs['betas'] = [float(b) if isinstance(b, (int, float)) and not isinstance(b, bool) else b
                               for b in kwargs['betas']]
        cls([torch.zeros(1, requires_grad=True)], **kwargs)
    except (TypeError, ValueError) as err:
        raise OptionError(f'{where}: {name} rejects these settings: {err}') from None


def _check_scheduler(spec: dict, where: str) -> None:
    name = _required_type(spec, where)
    known = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')
    if name not in known:
        raise OptionError(f'{where}.type: BasicSR builds {list(known)}, got {name!r}{did_you_mean(str(name), known)}')
    cls = getattr(basicsr_schedulers, 'MultiStepRestartLR' if name == 'MultiStepLR' else name, None) or getattr(
        torch.optim.lr_scheduler, name)
    _check_signature(cls, {k: v for k, v in spec.items() if k != 'type'}, where, skip=('optimizer',))
    for key in ('milestones', 'periods', 'restart_weights', 'restarts'):  # lists without a default to compare with
        if spec.get(key) is not None and not isinstance(spec[key], (list, tuple)):
            raise OptionError(f'{where}.{key} must be a list of iterations such as [100000, 200000], '
                              f'got {spec[key]!r}')
    for i, m in enumerate(spec.get('milestones') or []):
        _number(m, f'{where}.milestones[{i}]', 0)
    if 'gamma' in spec:
        _number(spec['gamma'], f'{where}.gamma', 0, low_open=True)
    for key in ('periods', 'restart_weights', 'restarts'):
        for i, value in enumerate(spec.get(key) or []):
            _number(value, f'{where}.{key}[{i}]', 0)


def check_path_block(opt: dict) -> None:
    path = opt.get('path')
    if path is None:
        return
    labels = {k[len('network_'):] for k in opt if k.startswith('network_')}
    roles = {r[len('network_'):] for r in NETWORK_KEYS}
    for key, value in path.items():
        match = re.fullmatch(r'(pretrain_network|param_key|strict_load)_(\w+)', key)
        if key in PATH_FIXED:
            continue
        if not match:
            known = PATH_FIXED | {f'{p}_{n}' for p in ('pretrain_network', 'param_key', 'strict_load') for n in labels}
            check_unknown_keys('path', [key], known)
        kind, label = match.groups()
        if label not in labels and (value is not None or label not in roles):  # `pretrain_network_d: ~` is fine
            raise OptionError(f'path.{key}: there is no network_{label} block in this file'
                              f'{did_you_mean(label, labels)}')
        if kind == 'strict_load':
            check_value(value, bool, f'path.{key}')
        elif kind == 'pretrain_network' and value is not None:
            check_value(value, str, f'path.{key}')
        elif kind == 'param_key' and value is not None and not isinstance(value, str):
            check_value(value, List[str], f'path.{key}')


def check_datasets(opt: dict) -> None:
    datasets = opt.get('datasets')
    if not isinstance(datasets, dict) or not datasets:
        raise OptionError('datasets is required: a mapping with at least a train entry (datasets.train.type, ...)')
    for phase, spec in datasets.items():
        where = f'datasets.{phase}'
        if phase.split('_')[0] not in ('train', 'val', 'test'):
            raise OptionError(f'{where}: entries are named train, val or val_<n> (BasicSR reads the phase from '
                              'the name)')
        cls = _registered(DATASET_REGISTRY, 'dataset', spec.get('type'), where, spec)
        own = {k: v for k, v in spec.items() if k not in LOADER_KEYS}
        typed = _typed_keys(cls)
        if typed is not None:
            values = parse_block(typed, own, where)
            if typed is SynthesisKeys:
                _check_synthesis(values, where)
            if typed is PairedKeys and '{}' not in values.filename_tmpl:
                raise OptionError(f"{where}.filename_tmpl must contain '{{}}' (the GT name), got "
                                  f'{values.filename_tmpl!r}')
            if typed is PairedKeys and values.cache_variants is not None:
                check_cache_variants(values.cache_variants, f'{where}.cache_variants', values.teacher_cache)
        else:
            read = keys_read_by(cls)
            if read is not None:
                check_unknown_keys(where, own, read)
        parse_block(LoaderKeys, {k: v for k, v in spec.items() if k in LOADER_KEYS}, where)  # after the typo check
        _check_io_backend(spec.get('io_backend'), f'{where}.io_backend')
        if phase == 'train' and isinstance(opt.get('scale'), int):
            check_crop_geometry(spec, where, opt['scale'], opt.get('gt_size'))
        _check_constructor_keys(cls, spec, where, phase, opt.get('scale'))
        names = check_data_files(spec, where, phase == 'train')
        if phase == 'train' and names is not None and isinstance(opt.get('scale'), int):
            check_data_sizes(spec, names, where, opt['scale'], opt.get('gt_size'))
            checks = (opt.get('sdakd') or {}).get('data') or {}
            if isinstance(checks, dict) and checks.get('verify_images') == 'all':
                limit = checks.get('verify_time_limit_s', DataChecks.verify_time_limit_s)
                decode_all_images(spec, names, where, float(limit or 0))
            else:
                check_file_ends(spec, names, where)
        if phase == 'train' and opt.get('is_train', True):
            for key in ('batch_size_per_gpu', 'num_worker_per_gpu'):
                if key not in spec:
                    raise OptionError(f'{where}.{key} is required for training')
        for key, value in spec.items():
            if key.startswith('dataroot') and value is not None and not isinstance(value, (str, list)):
                raise OptionError(f'{where}.{key} must be a folder path, got {value!r}')


def check_crop_geometry(spec: dict, where: str, scale: int, top_gt_size: Optional[int]) -> None:
    """Every GT crop and pad is a whole multiple of the scale (else the LR crop is rounded and the pair no longer
    lines up: BasicSR fails in iteration 1). That the crop fits in the pad: ``data_checks.check_data_sizes``."""
    sizes = [(f'{where}.{key}', spec.get(key)) for key in ('gt_size', 'crop_pad_size')] + [('gt_size', top_gt_size)]
    for key, size in sizes:
        if isinstance(size, int) and not isinstance(size, bool) and size % scale:
            raise OptionError(f'{key} is {size}, not a multiple of the scale {scale}: the LR crop would be '
                              f'{size / scale:g} pixels; use {size - size % scale} or {size - size % scale + scale}')


def _check_constructor_keys(cls, spec: dict, where: str, phase: str, scale: Any) -> None:
    """Dataset classes of basicsr (and of realesrgan, which registers its own copies once imported), constructed
    once with these options: a key they need and do not get (``meta_info`` for RealESRGANDataset on the disk
    backend, ...) is named here instead of as a bare KeyError when the loader starts. Only construction (file
    lists), no image is read; our own classes check themselves."""
    if cls.__module__.startswith('sdakd_basicsr.'):
        return
    try:
        cls(dict(spec, phase=phase.split('_')[0], scale=scale))
    except KeyError as err:
        key = err.args[0] if err.args else '?'
        raise OptionError(f'{where}.{key} is required by {cls.__name__} with these settings (io_backend '
                          f'{(spec.get("io_backend") or {}).get("type", "disk")}); see docs/training.md') from None
    except Exception:  # noqa: BLE001  (folders, files and sizes are checked by the checks that name them)
        return


IO_BACKENDS = {'disk': set(), 'lmdb': {'db_paths', 'client_keys', 'readonly', 'lock', 'readahead'},
               'memcached': {'server_list_cfg', 'client_cfg', 'sys_path'}}


def _check_io_backend(io: Any, where: str) -> None:
    if io is None:
        return
    if not isinstance(io, dict):
        raise OptionError(f'{where} must be a mapping such as {{type: disk}}, got {io!r}')
    kind = io.get('type')
    if kind not in IO_BACKENDS:
        raise OptionError(f'{where}.type must be one of {sorted(IO_BACKENDS)}, got {kind!r}'
                          + ('' if 'type' in io else f' (keys given: {sorted(io)})'))
    check_unknown_keys(where, [k for k in io if k != 'type'], IO_BACKENDS[kind] | {'type'})


def check_metrics(opt: dict) -> None:
    metrics = (opt.get('val') or {}).get('metrics') or {}
    for name, spec in metrics.items():
        where = f'val.metrics.{name}'
        if not isinstance(spec, dict):
            raise OptionError(f'{where} must be a mapping (type, crop_border, ...), got {spec!r}')
        fn = _registered(METRIC_REGISTRY, 'metric', spec.get('type'), where, spec)
        kwargs = {k: v for k, v in spec.items() if k not in ('type', 'better')}
        _check_signature(fn, kwargs, where, skip=('img', 'img2', 'input_order'), ignores_extra=True)
        if 'crop_border' in spec:
            _number(spec['crop_border'], f'{where}.crop_border', 0)
        if spec.get('better', 'higher') not in ('higher', 'lower'):
            raise OptionError(f'{where}.better must be higher or lower, got {spec["better"]!r}')
        if 'test_y_channel' in spec:
            check_value(spec['test_y_channel'], bool, f'{where}.test_y_channel')


def check_block_shapes(opt: dict) -> None:
    """A scalar or a list where a mapping block is meant (`datasets: abc`) is named with the expected form."""
    for key, value in opt.items():
        if (key in MAPPING_BLOCKS or key.startswith('network_')) and value is not None and not isinstance(value, dict):
            raise OptionError(f'{key} must be a mapping (indented `key: value` lines under `{key}:`), got {value!r}')
    for name, dataset in (opt.get('datasets') or {}).items():
        if not isinstance(dataset, dict):
            raise OptionError(f'datasets.{name} must be a mapping (name, type, dataroot_gt, ...), got {dataset!r}')
    for name, block in (opt.get('train') or {}).items():
        if (name.endswith('_opt') or name.startswith('optim_') or name == 'scheduler') and block is not None \
                and not isinstance(block, dict):
            raise OptionError(f'train.{name} must be a mapping (type: ..., ...), got {block!r}')


def check_option_file(opt: dict) -> None:
    """Every block outside ``sdakd:``/``train:``'s own schema (see the module docstring)."""
    check_unknown_keys('', [k for k in opt if k not in TOP_LEVEL], TOP_LEVEL | set(NETWORK_KEYS))
    check_block_shapes(opt)  # from here on every block, dataset, network, loss and optimizer is a mapping
    if not isinstance(opt.get('network_g'), dict):
        raise OptionError('network_g is required: the student generator (e.g. {type: RRDBNet, num_feat: 32, ...})')
    parse_block(TopLevel, {k: opt[k] for k in TopLevel.__dataclass_fields__ if k in opt}, '(top level)')
    num_gpu = opt.get('num_gpu', TopLevel.num_gpu)
    if num_gpu != 'auto' and (isinstance(num_gpu, bool) or not isinstance(num_gpu, int) or num_gpu < 0):
        raise OptionError(f'num_gpu must be auto or a whole number >= 0, got {num_gpu!r}')
    for key, cls in BLOCKS.items():
        if opt.get(key) is not None:
            parse_block(cls, opt[key], key)
    if isinstance(opt.get('train'), dict):  # a misspelt key is named before a required one is missed
        check_unknown_keys('train', opt['train'], TrainBlock.__dataclass_fields__)
    if opt.get('is_train', True):
        for key, example in (('logger', '{print_freq: 100, save_checkpoint_freq: 5000, use_tb_logger: false}'),
                             ('train', '{total_iter: ..., optim_g: ..., scheduler: ..., <losses>}'),
                             ('path', '{pretrain_network_g: ~, resume_state: ~}')):
            if not isinstance(opt.get(key), dict):
                raise OptionError(f'{key} is required for training: a mapping such as {example}')
        if opt['train'].get('total_iter') is None:
            raise OptionError('train.total_iter is required: the iterations of the stage')
    check_degradations(opt)
    check_networks(opt)
    check_path_block(opt)
    check_datasets(opt)
    if opt.get('is_train', True) and not isinstance(opt['datasets'].get('train'), dict):
        raise OptionError('datasets.train is required for training (the training set)')
    check_training_blocks(opt)
    check_metrics(opt)
    teacher_g = (opt.get('sdakd') or {}).get('teacher_g')  # its own shape: the sdakd schema names it
    teacher = teacher_g.get('network') if isinstance(teacher_g, dict) else None
    if isinstance(teacher, dict):
        check_networks({'network_teacher_g': teacher, 'scale': opt.get('scale')}, 'sdakd.teacher_g.network')


__all__ = ['OptionError', 'check_option_file', 'keys_read_by', 'LoggerBlock', 'ValBlock', 'DistParams',
           'LoaderKeys', 'TopLevel']
