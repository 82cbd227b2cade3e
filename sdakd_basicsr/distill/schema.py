"""The option schema: one typed definition of every option SDAKD reads, with its default and help.

From these dataclasses come the unknown-key check, the type/choice checks, the defaults the model uses
(it reads no option with a default of its own) and the option table in docs/options.md
(``python -m sdakd_basicsr.tools.options_doc --write``; a test fails when that file is stale).
"""
import dataclasses
import difflib
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Iterable, List, Optional, Sequence, Type, TypeVar

T = TypeVar('T')


def option(default: Any = MISSING, help: str = '', *, choices: Optional[Sequence] = None,
           minimum: Optional[float] = None, required: bool = False) -> Any:
    """A schema field. ``choices``: the allowed values; ``minimum``: the smallest allowed number."""
    meta = dict(help=help, choices=choices, minimum=minimum, required=required)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=None if required else default, metadata=meta)


@dataclass
class TeacherGenerator:
    """``sdakd.teacher_g``: the frozen teacher generator."""
    network: dict = option(required=True, help='its architecture, as a `network_g` block (e.g. RRDBNet 64/23/32)')
    path: str = option(required=True, help='its checkpoint, e.g. experiments/pretrained_models/RealESRGAN_x4plus.pth')
    param_key: Optional[str] = option('params_ema', help='the checkpoint entry to load; ~ for a raw state dict')
    strict_load: bool = option(True, help='every key must match')


@dataclass
class DataChecks:
    """``sdakd.data``: how thoroughly the training images are checked at start-up."""
    verify_images: str = option('headers', choices=('headers', 'all'), help='headers: read the size of up to 64 '
                                'training images and check that every JPEG/PNG ends with its end marker, so a '
                                'truncated file is named before iteration 1 (fast: no decoding); all: decode every '
                                'training image fully, which also finds corrupt bodies (progress printed)')
    verify_time_limit_s: float = option(900.0, minimum=0, help='verify_images all: stop decoding after this many '
                                        'seconds (the rest are checked when first drawn); 0 = no limit')


@dataclass
class SDAKDBlock:
    """``sdakd:`` — what the stage does."""
    stage: int = option(required=True, help='1 (supervised warm-up), 2 (student-D assisted distillation), 3 (full '
                        'adversarial), or 0 (teacher-discriminator warm-up)')
    teacher_g: Optional[TeacherGenerator] = option(None, help='the frozen teacher generator (keys below); required '
                                                   'when a term needs it')
    adversarial: Optional[List[str]] = option(None, help='discriminators whose adversarial term the student gets: '
                                              '[], [student], [teacher], [student, teacher]; ~ = by stage: 1 [], '
                                              '2 [student], 3 [student, teacher]')
    train_d_teacher: bool = option(True, help='stage 3: train the teacher discriminator (false: frozen)')
    taps: Optional[List[str]] = option(None, help='feature-map distillation taps (module names of the teacher '
                                       'generator); ~ = the family default (RRDBNet: body.5, body.11, body.17, '
                                       'body.22, conv_body)')
    student_taps: Optional[List[str]] = option(None, help='the matching module names in the student (~ = taps)')
    teacher_fidelity: bool = option(True, help='validation also reports PSNR against the teacher output '
                                    '(psnr_teacher)')
    amp: Optional[str] = option(None, choices=(None, 'bf16', 'fp16'), help='mixed precision for the training '
                                'forward passes: ~ (off), bf16, or fp16 (with a GradScaler per optimizer)')
    teacher_dtype: str = option('fp32', choices=('fp32', 'bf16', 'fp16'), help="the frozen teacher's own "
                                'precision, independent of amp (its outputs and tapped features are handed on '
                                'in fp32)')
    channels_last: bool = option(False, help='channels-last memory format for every network and batch (faster '
                                 'convolutions on tensor cores and some CPUs; not for GCFSR)')
    sharpen_gt_once: Optional[bool] = option(None, help='keep the USM-sharpened GT in the training-pair queue '
                                             'instead of sharpening the dequeued crops again: ~ = by stage (0/1 '
                                             'true, as RealESRNet; 2/3 false, as Real-ESRGAN)')
    truncate_teacher: bool = option(True, help="when no term needs the teacher's output, stop its forward pass "
                                    'at the last tap')
    check_finite: bool = option(True, help='stop with the iteration and term when a loss becomes NaN/inf')
    max_abs_weight: float = option(1e4, minimum=0, help='before every save: a trained network with a non-finite '
                                   'weight or one larger than this in magnitude stops the run, and nothing is '
                                   'written (the checkpoints on disk stay healthy); 0 = no check')
    value_range: List[float] = option([0, 1], choices=([0, 1], [-1, 1]), help="the images' value range: [0, 1] "
                                      '(Real-ESRGAN) or [-1, 1] (GCFSR)')
    log_grad_norms: bool = option(False, help="log the RMS gradient that each adversarial term (and the KD term) "
                                  "sends to the student's output (grad_l_g_gan_ds, ...): the capacity-mismatch "
                                  'diagnostic; costs one extra backward pass through each discriminator')
    init_student_from_teacher: bool = option(False, help='RRDBNet: initialise G_S from G_T by channel selection '
                                             'on the first training batch (an extension beyond the paper)')
    data: Optional[DataChecks] = option(None, help='start-up checks of the training images (keys below; ~ = '
                                        'defaults)')


LOSS_KEYS = ('pixel_opt', 'perceptual_opt', 'gan_opt', 'gan_teacher_opt', 'fmd_opt', 'kd_opt', 'd_distill_opt',
             'hf_opt', 'patch_opt', 'd_feat_opt', 'ldl_opt', 'blend_opt')
# keys of a loss block that the generator objective reads (not the loss class), with their defaults
# (docs/method.md, "Texture terms"): which image a texture term compares with, D_T's layers, ECO's schedule
LOSS_BLOCK_KEYS = {'hf_opt': {'target': 'teacher'}, 'patch_opt': {'target': 'teacher'},
                   'ldl_opt': {'target': 'teacher'}, 'd_feat_opt': {'layers': None},
                   'blend_opt': {'teacher_share': [0.0, 1.0]}}
TARGETS = ('teacher', 'gt')


def split_loss_block(key: str, spec: dict) -> tuple:
    """(the objective's keys of ``train.<key>`` with defaults filled in and checked, the loss class's block)."""
    defaults = LOSS_BLOCK_KEYS.get(key, {})
    own = {name: spec.get(name, default) for name, default in defaults.items()}
    where = f'train.{key}'
    if 'target' in own and own['target'] not in TARGETS:
        raise ValueError(f'{where}.target must be {_names(TARGETS)}, got {own["target"]!r}')
    if 'layers' in own and own['layers'] is not None:
        own['layers'] = check_value(own['layers'], List[str], f'{where}.layers')
        if not own['layers']:
            raise ValueError(f'{where}.layers: an empty list; give module names of D_T, or ~ for the default')
    if 'teacher_share' in own:
        share = own['teacher_share']
        if not (isinstance(share, (list, tuple)) and len(share) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in share)):
            raise ValueError(f'{where}.teacher_share must be [start, end], two numbers in [0, 1] (the teacher '
                             f"output's share of the target at the stage's first and last iteration), got {share!r}")
        own['teacher_share'] = [float(v) for v in share]
    return own, {k: v for k, v in spec.items() if k not in defaults}


OPTIM_KEYS = ('optim_g', 'optim_d', 'optim_d_teacher')


@dataclass
class TrainBlock:
    """``train:`` — losses, optimizers and the loop's own settings (BasicSR reads scheduler/total_iter/warmup_iter)."""
    pixel_opt: Optional[dict] = option(None, help='L_sup pixel term (e.g. L1Loss 1.0)')
    perceptual_opt: Optional[dict] = option(None, help='L_sup perceptual term (VGGPerceptualLoss / PerceptualLoss)')
    gan_opt: Optional[dict] = option(None, help="the student discriminator's GAN loss; its loss_weight is w_s")
    gan_teacher_opt: Optional[dict] = option(None, help="the teacher discriminator's GAN loss; loss_weight w_t")
    fmd_opt: Optional[dict] = option(None, help='feature-map distillation (FeatureMapDistillLoss); weight w_fmd')
    kd_opt: Optional[dict] = option(None, help='output distillation L1(G_S(x), G_T(x)); weight w_kd')
    d_distill_opt: Optional[dict] = option(None, help="D_S also learns D_T's logits on the same inputs (a reading "
                                           'of the paper)')
    hf_opt: Optional[dict] = option(None, help='high-frequency band distillation (WaveletBandLoss or '
                                    'FourierAmplitudeLoss) against `target`: teacher (default) or gt')
    patch_opt: Optional[dict] = option(None, help='patch-statistics matching (PatchSWDLoss) against `target`: '
                                       'teacher (default) or gt')
    d_feat_opt: Optional[dict] = option(None, help="teacher-discriminator feature matching (FeatureMatchLoss): D_T's "
                                        "features of the student's output vs of the teacher's; `layers`: D_T module "
                                        'names (~ = conv1..conv6 of a UNetDiscriminatorSN); needs network_d_teacher')
    ldl_opt: Optional[dict] = option(None, help="LDL artifact guard (ArtifactGuardLoss) against `target` (teacher "
                                     'or gt), weighted where the student is less stable than its EMA; needs ema_decay')
    blend_opt: Optional[dict] = option(None, help='ECO-style blended target: criterion (L1Loss, ...) against (1 - s) '
                                       "GT + s teacher output, s going linearly over the stage from "
                                       '`teacher_share: [start, end]` (default [0, 1])')
    d_crop_size: Optional[int] = option(None, minimum=8, help='the discriminators (GAN terms, their steps, D_T '
                                        'feature matching) see one random crop of this size of every image: cuts '
                                        'their cost by (gt_size / d_crop_size)^2; ~ = the whole image')
    d_batch: Optional[int] = option(None, minimum=1, help='the discriminators see only the first d_batch images of '
                                    'the batch; ~ = all')
    d_update_every: int = option(1, minimum=1, help="the discriminators' own steps every d_update_every iterations "
                                 '(their adversarial terms reach the student every iteration)')
    optim_g: Optional[dict] = option(None, help='optimizer of G_S and the adapters (Adam)')
    optim_d: Optional[dict] = option(None, help='optimizer of D_S')
    optim_d_teacher: Optional[dict] = option(None, help='optimizer of D_T')
    scheduler: Optional[dict] = option(None, help="BasicSR's learning-rate scheduler")
    total_iter: Optional[int] = option(None, minimum=1, help='iterations of the stage (read by BasicSR)')
    warmup_iter: Optional[int] = option(None, minimum=-1, help='linear learning-rate warm-up iterations (-1: none; '
                                        'BasicSR)')
    ema_decay: float = option(0.0, minimum=0, help='EMA of G_S (0: no EMA copy; Real-ESRGAN 0.999)')
    net_d_iters: int = option(1, minimum=1, help='the generator steps every net_d_iters iterations')
    net_d_init_iters: int = option(0, minimum=0, help='discriminator-only iterations at the start')
    r1_reg_weight: float = option(0.0, minimum=0, help='lazy R1 weight gamma on every trained discriminator '
                                  '(GCFSR 10)')
    net_d_reg_every: int = option(16, minimum=1, help='lazy R1 interval (iterations)')
    net_g_reg_every: int = option(4, minimum=1, help="interval used only by lazy_reg_correction for G's optimizer")
    lazy_reg_correction: bool = option(False, help="StyleGAN2's correction: lr and betas of each optimizer scaled "
                                       'by every / (every + 1)')


@dataclass
class DataKeys:
    """Top-level keys of basicsr's Real-ESRGAN synthesis that the model reads."""
    queue_size: int = option(180, minimum=1, help='training-pair pool size (a multiple of the batch size)')
    l1_gt_usm: bool = option(True, help='pixel loss against the USM-sharpened GT')
    percep_gt_usm: bool = option(True, help='perceptual loss against the USM-sharpened GT')
    gan_gt_usm: bool = option(False, help='GAN real images: the USM-sharpened GT')


# ------------------------------------------------------------------------------------------ checking
class OptionError(ValueError):
    """An option file that would fail (or silently misbehave) later: the message names the key and the fix."""


# YAML 1.1 (and basicsr's --force_yml) read 1e-4 as a string: the fix, in both places
NUMBER_AS_STRING_HINT = (' (YAML reads 1e-4 as a string: write 1.0e-4 or !!float 1e-4; after --force_yml write a '
                         'decimal, e.g. 0.0001)')


def did_you_mean(key: Any, known: Iterable[str], cutoff: float = 0.75) -> str:
    """' (did you mean 'x'?)' for the closest of ``known`` to a misspelt ``key``, or ''."""
    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=cutoff)
    return f' (did you mean {close[0]!r}?)' if close else ''


def _names(values: Sequence) -> str:
    names = ['~' if v is None else str(v) for v in values]
    return names[0] if len(names) == 1 else f'{", ".join(names[:-1])} or {names[-1]}'


def _is_block(tp) -> bool:
    return dataclasses.is_dataclass(tp)


def check_value(value: Any, tp, where: str) -> Any:
    """``value`` checked against the annotation ``tp``; returns it (a nested block parsed, ints as floats)."""
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else check_value(value, args[0], where)
    if _is_block(tp):
        if not isinstance(value, dict):
            raise KeyError(f'{where} must be a mapping with keys {", ".join(f.name for f in dataclasses.fields(tp))}')
        return parse_block(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f'{where} must be true or false, got {value!r}')
    elif tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)  # `!!float 5e3`, as BasicSR's own option files write frequencies
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f'{where} must be a whole number, got {value!r}')
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = NUMBER_AS_STRING_HINT if isinstance(value, str) else ''
            raise ValueError(f'{where} must be a number, got {value!r}{hint}')
        return float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ValueError(f'{where} must be a string, got {value!r}')
    elif tp is dict:
        if not isinstance(value, dict):
            raise ValueError(f'{where} must be a mapping, got {value!r}')
    elif typing.get_origin(tp) is list:
        item = typing.get_args(tp)[0]
        if not isinstance(value, (list, tuple)):  # `taps: body.5` is not silently read as [body.5]
            raise ValueError(f'{where} must be a list, e.g. `{where.rsplit(".", 1)[-1]}: [{value}]` for one item, '
                             f'got {value!r}')
        return [check_value(v, item, f'{where}[{i}]') for i, v in enumerate(value)]
    return value


def parse_block(cls: Type[T], values: Optional[dict], where: str) -> T:
    """An instance of the schema block ``cls`` from ``values``: unknown keys, required keys, types, choices and
    minimums checked, with messages that name the key path; absent keys take the schema's default."""
    values = values or {}
    fields = dataclasses.fields(cls)
    known = [f.name for f in fields]
    unknown = sorted(k for k in values if k not in known)
    if unknown:
        raise KeyError(f'{where}.{unknown[0]}: unknown key{did_you_mean(unknown[0], known)}; valid keys: '
                       f'{sorted(known)}')
    hints = typing.get_type_hints(cls)
    out = {}
    for f in fields:
        meta, key = f.metadata, f'{where}.{f.name}'
        if f.name not in values or values[f.name] is None and meta['required']:
            if meta['required']:
                raise KeyError(f'{key} is required: {meta["help"]}')
            out[f.name] = f.default_factory() if f.default_factory is not MISSING else f.default
            continue
        value = values[f.name]
        if meta['choices'] is not None:
            if not any(value == c and type(value) is type(c) or _same_list(value, c) for c in meta['choices']):
                raise ValueError(f'{key} must be {_names(meta["choices"])}, got {value!r}')
        value = check_value(value, hints[f.name], key)
        if meta['minimum'] is not None and value is not None and value < meta['minimum']:
            raise ValueError(f'{key} must be >= {meta["minimum"]}, got {value!r}')
        out[f.name] = value
    return cls(**out)


def _same_list(value, choice) -> bool:
    return (isinstance(choice, list) and isinstance(value, (list, tuple)) and len(value) == len(choice)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and float(v) == float(c)
                    for v, c in zip(value, choice)))


# ------------------------------------------------------------------------------------------ documentation


DOCUMENTED_BLOCKS = (('sdakd', SDAKDBlock), ('sdakd.teacher_g', TeacherGenerator), ('sdakd.data', DataChecks),
                     ('train', TrainBlock),
                     ('(top level)', DataKeys))


__all__ = ['SDAKDBlock', 'TeacherGenerator', 'DataChecks', 'TrainBlock', 'DataKeys', 'LOSS_KEYS', 'OPTIM_KEYS',
           'LOSS_BLOCK_KEYS', 'TARGETS', 'split_loss_block',
           'parse_block', 'option', 'check_value', 'did_you_mean']
