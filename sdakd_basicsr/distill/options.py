"""The one path from an option dict to the typed options an SDAKD run uses: ``resolve_options``.

It runs every check of the option file once (``file_schema``: the blocks BasicSR reads; ``schema``: ``sdakd:``
and ``train:``; then the stage's needs, the queue, the checkpoint files and the teacher cache) and returns an
``SDAKDOptions``. The pre-flight (``train.py``) resolves before BasicSR touches the disk and hands the result
over; the model takes it (``options_for_model``) instead of checking again, and a model built from Python
(tests, the API) resolves through the same function. Every message names the option key or the file at fault.
"""
import dataclasses
import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from os import path as osp
from typing import Any, Dict, List, Optional, Tuple

from ..archs.generator_call import family_of, student_taps_for
from ..data.teacher_cache import check_cache_matches, lq_paths_of, variants_of
from .file_schema import RUNTIME_KEYS, check_option_file
from .schema import LOSS_BLOCK_KEYS, DataKeys, SDAKDBlock, TrainBlock, parse_block, split_loss_block
from .stage_policy import ADAPTERS_KEY, GENERATOR_KEY, NETWORK_KEYS, StagePolicy, resolve_policy

OFFICIAL_DOWNLOADS = {
    'RealESRGAN_x4plus.pth': 'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth',
    'RealESRGAN_x4plus_netD.pth':
    'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.2.3/RealESRGAN_x4plus_netD.pth',
    'RealESRGAN_x2plus.pth': 'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth',
    'RealESRGAN_x2plus_netD.pth':
    'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.2.3/RealESRGAN_x2plus_netD.pth',
    # the compact photo model (SRVGGNetCompact 64x32): where the compact students start
    'realesr-general-x4v3.pth':
    'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-general-x4v3.pth',
}


@dataclass
class SDAKDOptions:
    """The resolved options of one run: the checked schema blocks, the stage policy and derived values."""
    block: SDAKDBlock
    train: TrainBlock
    data: DataKeys
    policy: StagePolicy
    teacher_g: Optional[Dict[str, Any]]  # sdakd.teacher_g with its defaults filled in
    taps: List[str] = field(default_factory=list)
    student_taps: List[str] = field(default_factory=list)
    sharpen_gt_once: bool = False

    @property
    def stage(self) -> int:
        return self.policy.stage

    @property
    def teacher_fidelity(self) -> bool:
        return self.block.teacher_fidelity and self.teacher_g is not None

    @property
    def value_range(self) -> Tuple[float, float]:
        return tuple(self.block.value_range)

    def __getattr__(self, name: str):  # amp, teacher_dtype, channels_last, check_finite, ... straight from sdakd:
        if name != 'block' and name in SDAKDBlock.__dataclass_fields__:
            return getattr(self.block, name)
        raise AttributeError(name)


def loss_weight(loss_opt: Optional[dict]) -> float:
    return 0.0 if not loss_opt else float(loss_opt.get('loss_weight', 1.0))


def resolve_options(opt: dict) -> SDAKDOptions:
    """Every check of an SDAKD option dict, once, and the resolved options (see the module docstring).
    ``opt`` as basicsr's parse_options leaves it or as the file reads (``is_train`` defaults to true)."""
    check_option_file(opt)
    sd = parse_sdakd_options(opt)
    if opt.get('is_train', True):
        check_queue(opt, sd.data)
        check_checkpoint_files(opt, sd)
        check_teacher_cache(opt, sd)
    return sd


# ------------------------------------------------------------------------------------------ the hand-over
_HANDED_OVER: Dict[str, SDAKDOptions] = {}  # the pre-flight's last resolution, by the digest of its options


def options_digest(opt: dict) -> str:
    """A digest of what the user wrote that the resolution depends on. Left out: what basicsr adds or rewrites
    between the pre-flight and the model (``RUNTIME_KEYS``; num_gpu: auto made a count; a drawn manual_seed;
    each dataset's phase and scale; ``path``, where it puts its folders and, at a resume, the saved networks:
    nothing in ``SDAKDOptions`` comes from ``path``, and the resume files are checked when they are found)."""
    mine = {k: v for k, v in opt.items() if k not in RUNTIME_KEYS and k not in ('num_gpu', 'manual_seed', 'path')}
    if isinstance(mine.get('datasets'), dict):
        mine['datasets'] = {n: {k: v for k, v in d.items() if k not in ('phase', 'scale')} if isinstance(d, dict)
                            else d for n, d in mine['datasets'].items()}
    return hashlib.sha256(json.dumps(mine, sort_keys=True, default=str).encode()).hexdigest()


def hand_over(opt: dict, sd: SDAKDOptions) -> None:
    """Keep the pre-flight's resolution of ``opt`` for the next model this process builds (one at a time)."""
    _HANDED_OVER.clear()
    _HANDED_OVER[options_digest(opt)] = sd


def options_for_model(opt: dict) -> SDAKDOptions:
    """The model's options: the pre-flight's resolution when it was made of these same options (the train.py
    path, a resume included), else ``resolve_options`` now (a model built from Python; basicsr's --debug, which
    changes the logger and the name, is resolved again by the same function). Either way the hand-over is used
    up."""
    handed = _HANDED_OVER.pop(options_digest(opt), None)
    _HANDED_OVER.clear()
    return handed if handed is not None else resolve_options(opt)


def texture_terms(train: TrainBlock) -> Dict[str, Tuple[dict, dict]]:
    """{loss key: (the objective's own keys of that block, the loss class's block)} for every texture term with a
    weight above zero (``schema.LOSS_BLOCK_KEYS``: hf_opt, patch_opt, d_feat_opt, ldl_opt, blend_opt)."""
    return {key: split_loss_block(key, getattr(train, key)) for key in LOSS_BLOCK_KEYS
            if loss_weight(getattr(train, key)) > 0}


def parse_sdakd_options(opt: dict) -> SDAKDOptions:
    """``sdakd:``, ``train:`` and the top-level keys SDAKD reads, checked against the schema; the stage policy
    and the taps resolved; the stage's networks, losses and optimizers present. The part of
    ``resolve_options`` that tools need to read a file's stage and taps without running it (no file checks)."""
    if not isinstance(opt.get('sdakd'), dict):
        raise KeyError('model_type SDAKDModel needs an `sdakd:` section (at least `stage:`); see docs/options.md')
    block = parse_block(SDAKDBlock, opt['sdakd'], 'sdakd')
    is_train = opt.get('is_train', True)
    train = parse_block(TrainBlock, opt.get('train') if is_train else {}, 'train')
    data = parse_block(DataKeys, {k: opt[k] for k in DataKeys.__dataclass_fields__ if k in opt}, '(top level)')

    fmd = loss_weight(train.fmd_opt) > 0
    kd = loss_weight(train.kd_opt) > 0
    texture = texture_terms(train)
    # d_feat and blend have no `target`: they always compare with the teacher's output
    teacher_output = any(own.get('target', 'teacher') == 'teacher' for own, _ in texture.values())
    policy = resolve_policy(block.stage, block.adversarial, block.train_d_teacher, fmd, kd,
                            tuple(key[:-len('_opt')] for key in texture), teacher_output)

    teacher_g = dataclasses.asdict(block.teacher_g) if block.teacher_g is not None else None
    if (policy.teacher_forward or block.init_student_from_teacher) and teacher_g is None:
        raise KeyError(f'sdakd.teacher_g is required: {policy.describe()}'
                       + ('; init_student_from_teacher needs it too' if block.init_student_from_teacher else ''))
    if block.init_student_from_teacher:
        path_opt = opt.get('path') or {}
        # on resume, basicsr points pretrain_network_g at the saved student: that is no conflict
        if path_opt.get('pretrain_network_g') and not path_opt.get('resume_state'):
            raise KeyError('sdakd.init_student_from_teacher and path.pretrain_network_g both set the student\'s '
                           'starting weights: keep one')
        student_net, teacher_net = opt[GENERATOR_KEY], teacher_g['network']
        if student_net.get('type') != 'RRDBNet' or teacher_net.get('type') != 'RRDBNet' or \
                student_net.get('num_block', 23) != teacher_net.get('num_block', 23):
            raise ValueError(f'sdakd.init_student_from_teacher selects channels of an RRDBNet teacher for an RRDBNet '
                             f'student of the same depth; this student is a {student_net.get("type")} '
                             f'(num_block {student_net.get("num_block", "-")}) of a {teacher_net.get("type")} '
                             f'(num_block {teacher_net.get("num_block", "-")}). Start it from pretrained weights '
                             f'(path.pretrain_network_g, e.g. a model converted by tools.ncnn_convert) or from '
                             f'scratch (docs/training.md, "Students of another architecture")')

    for key in ('taps', 'student_taps'):
        if getattr(block, key) is not None and not getattr(block, key):
            raise ValueError(f'sdakd.{key}: an empty list; give module names, or ~ for the family default')
    taps: List[str] = []
    student_taps: List[str] = []
    if policy.fmd:
        if not opt.get(ADAPTERS_KEY):
            raise KeyError('train.fmd_opt is set but `network_adapters` is not configured '
                           '(e.g. network_adapters: {type: FeatureAdapters, kind: mlp})')
        taps = list(block.taps or family_of(teacher_g['network']).taps_for(teacher_g['network']))
        student_taps = list(block.student_taps or student_taps_for(teacher_g['network'], taps, opt[GENERATOR_KEY]))
        if len(student_taps) != len(taps):
            raise ValueError(f'sdakd.student_taps has {len(student_taps)} names for {len(taps)} taps')
    elif opt.get(ADAPTERS_KEY) and is_train:
        raise KeyError('network_adapters is configured but train.fmd_opt is not (or has loss_weight 0): '
                       'the adapters would never train; remove one or set the other')

    if is_train:
        _check_stage_networks(opt, train, policy)
        _check_texture_terms(opt, train, texture, policy)
    return SDAKDOptions(
        block=block, train=train, data=data, policy=policy, teacher_g=teacher_g, taps=taps, student_taps=student_taps,
        sharpen_gt_once=policy.stage <= 1 if block.sharpen_gt_once is None else block.sharpen_gt_once)


def _check_texture_terms(opt: dict, train: TrainBlock, texture: Dict[str, tuple], policy: StagePolicy) -> None:
    """What each texture term needs besides its own block: the EMA (LDL), a teacher discriminator that has learnt
    something (D_T feature matching)."""
    if 'ldl_opt' in texture and train.ema_decay <= 0:
        raise KeyError('train.ldl_opt (the LDL artifact guard) compares the student with its EMA: set '
                       'train.ema_decay > 0 (e.g. 0.999)')
    if 'd_feat_opt' in texture:
        if not opt.get('network_d_teacher'):
            raise KeyError('train.d_feat_opt matches features of the teacher discriminator: configure '
                           '`network_d_teacher` (and path.pretrain_network_d_teacher: the stage-0 D_T)')
        if not (opt.get('path') or {}).get('pretrain_network_d_teacher') and not policy.train_d_teacher:
            raise KeyError('train.d_feat_opt: the teacher discriminator is neither loaded '
                           '(path.pretrain_network_d_teacher) nor trained in this stage: its features would be '
                           'those of random weights')


def _check_stage_networks(opt: dict, train: TrainBlock, policy: StagePolicy) -> None:
    """Pre-flight: every discriminator role the stage uses has its network, GAN loss and (if it trains)
    optimizer; D_T -> D_S distillation has what it needs."""
    if loss_weight(train.d_distill_opt) > 0:
        # a reading of the paper (docs/method.md, "Switches"): D_S also learns D_T's logits on the same inputs
        if not policy.train_d_student:
            raise KeyError(f'train.d_distill_opt distils D_T into the student discriminator, but sdakd.stage '
                           f'{policy.stage} (adversarial: {list(policy.adversarial)}) does not train D_S')
        if not opt.get('network_d_teacher') or not (opt.get('path') or {}).get('pretrain_network_d_teacher'):
            raise KeyError('train.d_distill_opt needs the teacher discriminator: set `network_d_teacher` and '
                           'path.pretrain_network_d_teacher (frozen unless sdakd.adversarial includes teacher)')
    roles = policy.adversary_roles
    for role in roles:
        if not opt.get(role.net_key):
            raise KeyError(f'sdakd.stage {policy.stage} (adversarial: {[r.value for r in roles]}) needs '
                           f'{role.description}, but `{role.net_key}` is not configured')
        if not getattr(train, role.loss_key):
            raise KeyError(f'sdakd.stage {policy.stage} uses {role.description} but train.{role.loss_key} is not '
                           f'configured')
        if loss_weight(getattr(train, role.loss_key)) <= 0 and not policy.warmup_d_teacher:
            raise ValueError(f'train.{role.loss_key}.loss_weight is 0, but sdakd.adversarial lists {role.value}: '
                             f'{role.description} would be built, trained and saved without ever reaching the '
                             f'student; give it a weight > 0 or drop {role.value} from sdakd.adversarial')
        if policy.trains(role) and not getattr(train, role.optim_key):
            raise KeyError(f'sdakd.stage {policy.stage} trains {role.description} but train.{role.optim_key} is '
                           f'not configured')
    if not policy.warmup_d_teacher and not train.optim_g:
        raise KeyError('train.optim_g is required (the optimizer of the student generator and the adapters)')


def check_queue(opt: dict, data: DataKeys) -> None:
    train_set = (opt.get('datasets') or {}).get('train') or {}
    batch = train_set.get('batch_size_per_gpu')
    queue = data.queue_size
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
    for key in NETWORK_KEYS:
        if path_opt.get(f'pretrain_{key}'):
            wanted.append((f'path.pretrain_{key}', path_opt[f'pretrain_{key}']))
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


def check_teacher_cache(opt: dict, sd: SDAKDOptions) -> None:
    """A teacher cache (``datasets.train.teacher_cache``) needs fixed LR inputs and must come from this run's
    teacher and taps."""
    path = ((opt.get('datasets') or {}).get('train') or {}).get('teacher_cache')
    if not path:
        return
    if opt.get('high_order_degradation', True):
        raise ValueError('datasets.train.teacher_cache: the cache holds the teacher on fixed LR images, but '
                         'high_order_degradation synthesises new LR inputs every iteration; set '
                         'high_order_degradation: false (paired data) or remove teacher_cache')
    train_set = opt['datasets']['train']
    check_cache_matches(path, sd.teacher_g, sd.taps, lq_paths_of(train_set), variants_of(train_set),
                        sd.teacher_dtype)


def optimizer_options(train: TrainBlock, key: str) -> dict:
    """``train.<key>`` (optim_g / optim_d / optim_d_teacher) with StyleGAN2's lazy-regularisation correction
    applied when ``lazy_reg_correction`` is on: lr and betas scaled by every / (every + 1)."""
    optim_opt = dict(getattr(train, key))  # numbers already: the file check refuses a string lr
    if isinstance(optim_opt.get('betas'), (list, tuple)):  # YAML [0, 0.99]: torch wants both floats
        optim_opt['betas'] = [float(b) for b in optim_opt['betas']]
    if train.lazy_reg_correction:
        every = train.net_g_reg_every if key == 'optim_g' else train.net_d_reg_every
        ratio = every / (every + 1)
        optim_opt['lr'] = optim_opt['lr'] * ratio
        optim_opt['betas'] = [b**ratio for b in optim_opt.get('betas', (0.9, 0.999))]
    return optim_opt
