"""The ``sdakd:`` option section: schema, defaults and the checks that run before anything is built.

Every check here runs at model construction, before the first iteration, and names the option key or the
file at fault. Unknown keys are errors (a typo must not silently fall back to a default).
"""
import glob
import os
import re
from dataclasses import dataclass, field
from os import path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .stage_policy import StagePolicy, resolve_policy

# key -> (default, description); `None` default with required=True below means the key must be given
SDAKD_KEYS: Dict[str, Tuple[Any, str]] = {
    'stage': (None, '1 (supervised warm-up), 2 (student-D assisted distillation), 3 (full adversarial), '
              'or 0 (teacher-discriminator warm-up)'),
    'teacher_g': (None, 'the frozen teacher generator: {network: {...}, path: ..., param_key: params_ema}'),
    'adversarial': (None, 'discriminators whose adversarial term the student gets: [], [student], '
                    '[teacher], [student, teacher]; default by stage: 1 [], 2 [student], 3 [student, teacher]'),
    'train_d_teacher': (True, 'stage 3: train the teacher discriminator (false: frozen)'),
    'taps': (None, 'feature-map distillation taps (module names of the teacher generator); '
             'default for RRDBNet: body.5, body.11, body.17, body.22, conv_body'),
    'student_taps': (None, 'the matching module names in the student (default: the same as taps)'),
    'teacher_fidelity': (True, 'validation also reports PSNR against the teacher output (psnr_teacher)'),
    'amp': (None, 'mixed precision for the training forward passes: ~ (off), bf16, or fp16 (with a GradScaler per '
            'optimizer)'),
    'teacher_dtype': ('fp32', 'the frozen teacher\'s own precision, independent of amp: fp32, bf16 or fp16 '
                      '(weights and forward pass; its outputs and tapped features are handed on in fp32)'),
    'channels_last': (False, 'channels-last memory format for every network and batch (faster convs on '
                      'tensor cores and some CPUs; checkpoints load anywhere as usual; not for GCFSR)'),
    'sharpen_gt_once': (None, 'keep the USM-sharpened GT in the training-pair queue instead of sharpening the '
                        'dequeued crops again: ~ = by stage (0/1 true, as RealESRNet; 2/3 false, as Real-ESRGAN)'),
    'truncate_teacher': (True, 'when no term needs the teacher\'s output, stop its forward pass at the last tap'),
    'check_finite': (True, 'stop with the iteration and term when a loss becomes NaN/inf'),
    'value_range': ([0, 1], 'the images\' value range: [0, 1] (Real-ESRGAN) or [-1, 1] (GCFSR)'),
    'init_student_from_teacher': (False, 'RRDBNet: initialise G_S from G_T by channel selection on the first '
                                  'training batch (an extension beyond the paper)'),
}
TEACHER_G_KEYS = {'network', 'path', 'param_key', 'strict_load'}
# train.* keys the SDAKD model consumes; other *_opt keys are typos or unsupported terms
TRAIN_LOSS_KEYS = ('pixel_opt', 'perceptual_opt', 'gan_opt', 'gan_teacher_opt', 'fmd_opt', 'kd_opt',
                   'd_distill_opt')
TRAIN_OPTIM_KEYS = ('optim_g', 'optim_d', 'optim_d_teacher')
TRAIN_OTHER_KEYS = ('ema_decay', 'scheduler', 'total_iter', 'warmup_iter', 'net_d_iters', 'net_d_init_iters',
                    'r1_reg_weight', 'net_d_reg_every', 'net_g_reg_every', 'lazy_reg_correction')
# SDAKD.md section 4: default feature taps per generator type
DEFAULT_TAPS = {'GCFSR': ['conv_body_down.1', 'conv_body_down.3', 'style_convs.1', 'style_convs.3', 'style_convs.5',
                          'style_convs.7']}
DEFAULT_TAPS['GCFSR_blind'] = DEFAULT_TAPS['GCFSR']

OFFICIAL_DOWNLOADS = {
    'RealESRGAN_x4plus.pth': 'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth',
    'RealESRGAN_x4plus_netD.pth':
    'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.2.3/RealESRGAN_x4plus_netD.pth',
    'RealESRGAN_x2plus.pth': 'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth',
    'RealESRGAN_x2plus_netD.pth':
    'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.2.3/RealESRGAN_x2plus_netD.pth',
}


@dataclass
class SDAKDOptions:
    stage: int
    policy: StagePolicy
    teacher_g: Optional[Dict[str, Any]]
    taps: List[str] = field(default_factory=list)
    student_taps: List[str] = field(default_factory=list)
    teacher_fidelity: bool = True
    check_finite: bool = True
    truncate_teacher: bool = True
    amp: Optional[str] = None
    teacher_dtype: str = 'fp32'
    sharpen_gt_once: bool = False
    channels_last: bool = False
    init_student_from_teacher: bool = False
    value_range: Tuple[float, float] = (0., 1.)


def loss_weight(loss_opt: Optional[dict]) -> float:
    return 0.0 if not loss_opt else float(loss_opt.get('loss_weight', 1.0))


def default_taps(network_opt: dict) -> List[str]:
    """RRDBNet: the outputs of every sixth RRDB, of the last one, and of conv_body; GCFSR: two encoder and
    four decoder layers (SDAKD.md section 4)."""
    if network_opt.get('type') in DEFAULT_TAPS:
        return list(DEFAULT_TAPS[network_opt['type']])
    if network_opt.get('type') != 'RRDBNet':
        raise ValueError(f'sdakd.taps: no default taps for {network_opt.get("type")}; list the module names '
                         f'to distil (see README, "Feature taps")')
    num_block = int(network_opt.get('num_block', 23))
    blocks = sorted({min(6 * k - 1, num_block - 1) for k in (1, 2, 3)} | {num_block - 1})
    return [f'body.{b}' for b in blocks] + ['conv_body']


def parse_sdakd_options(opt: dict) -> SDAKDOptions:
    """Validate ``opt['sdakd']`` and the train keys SDAKD reads; resolve the stage policy."""
    sd = opt.get('sdakd')
    if not isinstance(sd, dict):
        raise KeyError('model_type SDAKDModel needs an `sdakd:` section (at least `stage:`); see README, '
                       '"SDAKD option keys"')
    unknown = sorted(set(sd) - set(SDAKD_KEYS))
    if unknown:
        raise KeyError(f'sdakd: unknown key(s) {unknown}; valid keys: {sorted(SDAKD_KEYS)}')
    if 'stage' not in sd:
        raise KeyError(f'sdakd.stage is required: {SDAKD_KEYS["stage"][1]}')
    values = {k: sd.get(k, default) for k, (default, _) in SDAKD_KEYS.items()}

    train_opt = opt.get('train') or {}
    if opt.get('is_train', True):
        known = TRAIN_LOSS_KEYS + TRAIN_OPTIM_KEYS + TRAIN_OTHER_KEYS
        bad = sorted(k for k in train_opt if k not in known)
        if bad:
            raise KeyError(f'train: unknown key(s) {bad} for SDAKDModel; loss keys: {list(TRAIN_LOSS_KEYS)}, '
                           f'optimizer keys: {list(TRAIN_OPTIM_KEYS)}, others: {list(TRAIN_OTHER_KEYS)}')

    fmd = loss_weight(train_opt.get('fmd_opt')) > 0
    kd = loss_weight(train_opt.get('kd_opt')) > 0
    policy = resolve_policy(values['stage'], values['adversarial'], values['train_d_teacher'], fmd, kd)

    teacher_g = values['teacher_g']
    if teacher_g is not None:
        if not isinstance(teacher_g, dict):
            raise KeyError('sdakd.teacher_g must be a mapping with keys network, path, param_key')
        unknown = sorted(set(teacher_g) - TEACHER_G_KEYS)
        if unknown:
            raise KeyError(f'sdakd.teacher_g: unknown key(s) {unknown}; valid keys: {sorted(TEACHER_G_KEYS)}')
        for key in ('network', 'path'):
            if not teacher_g.get(key):
                raise KeyError(f'sdakd.teacher_g.{key} is required')
        teacher_g = {'param_key': 'params_ema', 'strict_load': True, **teacher_g}
    init_from_teacher = bool(values['init_student_from_teacher'])
    if (policy.teacher_forward or init_from_teacher) and teacher_g is None:
        raise KeyError(f'sdakd.teacher_g is required: {policy.describe()}'
                       + ('; init_student_from_teacher needs it too' if init_from_teacher else ''))
    if init_from_teacher:
        path_opt = opt.get('path') or {}
        # on resume, basicsr points pretrain_network_g at the saved student: that is no conflict
        if path_opt.get('pretrain_network_g') and not path_opt.get('resume_state'):
            raise KeyError('sdakd.init_student_from_teacher and path.pretrain_network_g both set the student\'s '
                           'starting weights: keep one')
        if opt['network_g'].get('type') != 'RRDBNet' or teacher_g['network'].get('type') != 'RRDBNet':
            raise ValueError('sdakd.init_student_from_teacher supports RRDBNet teachers and students')

    taps: List[str] = []
    student_taps: List[str] = []
    if policy.fmd:
        if not opt.get('network_adapters'):
            raise KeyError('train.fmd_opt is set but `network_adapters` is not configured '
                           '(e.g. network_adapters: {type: FeatureAdapters, kind: mlp})')
        taps = list(values['taps'] or default_taps(teacher_g['network']))
        student_taps = list(values['student_taps'] or taps)
        if len(student_taps) != len(taps):
            raise ValueError(f'sdakd.student_taps has {len(student_taps)} names for {len(taps)} taps')
    elif opt.get('network_adapters') and opt.get('is_train', True):
        raise KeyError('network_adapters is configured but train.fmd_opt is not (or has loss_weight 0): '
                       'the adapters would never train; remove one or set the other')

    if opt.get('is_train', True):
        _check_stage_networks(opt, policy)
    return SDAKDOptions(
        stage=policy.stage,
        policy=policy,
        teacher_g=teacher_g,
        taps=taps,
        student_taps=student_taps,
        teacher_fidelity=bool(values['teacher_fidelity']) and teacher_g is not None,
        check_finite=bool(values['check_finite']),
        truncate_teacher=bool(values['truncate_teacher']),
        amp=_choice('amp', values['amp'], (None, 'bf16', 'fp16')),
        teacher_dtype=_choice('teacher_dtype', values['teacher_dtype'], ('fp32', 'bf16', 'fp16')),
        channels_last=_flag('channels_last', values['channels_last']),
        sharpen_gt_once=(policy.stage <= 1 if values['sharpen_gt_once'] is None
                         else _flag('sharpen_gt_once', values['sharpen_gt_once'])),
        init_student_from_teacher=init_from_teacher,
        value_range=_value_range(values['value_range']))


def _choice(key: str, value, allowed: Sequence[Optional[str]]):
    if value not in allowed:
        names = ['~' if a is None else a for a in allowed]
        raise ValueError(f'sdakd.{key} must be {", ".join(names[:-1])} or {names[-1]}, got {value!r}')
    return value


def _flag(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f'sdakd.{key} must be true or false, got {value!r}')
    return value


def _value_range(value) -> Tuple[float, float]:
    if not isinstance(value, (list, tuple)) or [float(v) for v in value] not in ([0., 1.], [-1., 1.]):
        raise ValueError(f'sdakd.value_range must be [0, 1] or [-1, 1], got {value!r}')
    return float(value[0]), float(value[1])


def _check_stage_networks(opt: dict, policy: StagePolicy) -> None:
    train_opt = opt.get('train') or {}
    needs = {
        'student': ('network_d', 'gan_opt', 'optim_d', 'the student discriminator D_S '
                    '(e.g. UNetDiscriminatorSN with num_feat = 64 x width)'),
        'teacher': ('network_d_teacher', 'gan_teacher_opt', 'optim_d_teacher',
                    'the teacher discriminator D_T (UNetDiscriminatorSN, num_feat 64)'),
    }
    if loss_weight(train_opt.get('d_distill_opt')) > 0:
        # a reading of the paper (SDAKD.md section 5): D_S also learns D_T's logits on the same real/fake inputs
        if not policy.train_d_student:
            raise KeyError(f'train.d_distill_opt distils D_T into the student discriminator, but sdakd.stage '
                           f'{policy.stage} (adversarial: {list(policy.adversarial)}) does not train D_S')
        if not opt.get('network_d_teacher') or not (opt.get('path') or {}).get('pretrain_network_d_teacher'):
            raise KeyError('train.d_distill_opt needs the teacher discriminator: set `network_d_teacher` and '
                           'path.pretrain_network_d_teacher (frozen unless sdakd.adversarial includes teacher)')
    discs = policy.adversarial + (('teacher', ) if policy.warmup_d_teacher else ())
    for disc in discs:
        net_key, loss_key, optim_key, what = needs[disc]
        if not opt.get(net_key):
            raise KeyError(f'sdakd.stage {policy.stage} (adversarial: {list(discs)}) needs {what}, '
                           f'but `{net_key}` is not configured')
        if not train_opt.get(loss_key):
            raise KeyError(f'sdakd.stage {policy.stage} uses {what} but train.{loss_key} is not configured')
        trains = policy.train_d_student if disc == 'student' else policy.train_d_teacher
        if trains and not train_opt.get(optim_key):
            raise KeyError(f'sdakd.stage {policy.stage} trains {what} but train.{optim_key} is not configured')


def check_queue(opt: dict) -> None:
    train_set = (opt.get('datasets') or {}).get('train') or {}
    batch = train_set.get('batch_size_per_gpu')
    queue = opt.get('queue_size', 180)
    if batch and queue % batch != 0:
        raise ValueError(f'queue_size {queue} must be divisible by datasets.train.batch_size_per_gpu {batch} '
                         f'(the training-pair pool swaps whole batches)')


def _producer_hint(path: str, root: str) -> str:
    """For a checkpoint inside experiments/<name>/models/, name the option file whose run writes it."""
    match = re.search(r'experiments[/\\]([^/\\]+)[/\\]models[/\\]', path)
    if not match:
        return ''
    name = match.group(1)
    producers = []
    for yml in sorted(glob.glob(osp.join(root, 'options', '**', '*.yml'), recursive=True)):
        with open(yml, encoding='utf-8') as f:
            if re.search(rf'^name:\s*{re.escape(name)}\s*$', f.read(), re.MULTILINE):
                producers.append(osp.relpath(yml, root))
    if producers:
        return (f' It is written by the experiment `{name}` (the previous stage): run '
                f'`python sdakd_basicsr/train.py -opt {producers[0]}` first.')
    return f' It is written by the experiment `{name}` (the previous stage): train that first.'


def check_checkpoint_files(opt: dict, sd: SDAKDOptions) -> None:
    """Every checkpoint the run will load must exist; say who produces a missing one."""
    root = opt.get('root_path') or os.getcwd()
    wanted = []
    if sd.teacher_g is not None:
        wanted.append(('sdakd.teacher_g.path', sd.teacher_g['path']))
    path_opt = opt.get('path') or {}
    for key in ('pretrain_network_g', 'pretrain_network_d', 'pretrain_network_d_teacher',
                'pretrain_network_adapters'):
        if path_opt.get(key):
            wanted.append((f'path.{key}', path_opt[key]))
    for key, file in wanted:
        if osp.isfile(file):
            continue
        name = osp.basename(file)
        hint = _producer_hint(file, root)
        if not hint and name in OFFICIAL_DOWNLOADS:
            hint = (f' It is an official Real-ESRGAN file: download {OFFICIAL_DOWNLOADS[name]} into '
                    f'{osp.dirname(file) or "."}/.')
        elif not hint:
            hint = ' Put the file there or correct the path.'
        raise FileNotFoundError(f'{key}: checkpoint not found: {file}.{hint}')
