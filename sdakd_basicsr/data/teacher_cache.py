"""Teacher cache for fixed LR data: the frozen teacher's output and tapped features, computed once per LR image.

With LR images that do not change between epochs, the teacher's forward pass is the same every epoch. The
cache holds, per training image, one or more *variants* of its LR: the clean LR on disk (bicubic in the demo)
and/or K seeded Real-ESRGAN degradations of its GT (``data/degradation.py``), each with the teacher's output and
the feature maps of ``sdakd.taps`` in half precision (degraded LR as uint8, exactly what the teacher saw).
``TeacherCachedPairedDataset`` draws one variant per visit and crops and flips it with the GT; the model uses the
cached maps instead of running the teacher (docs/training.md, "Teacher cache").

What differs from the online teacher: the cached maps are the teacher's response to the *whole* image, then
cropped (near a crop's border the online teacher would see zero padding instead of the real context) and
flipped/rotated (the online teacher would process the flipped input). With whole-image crops and no
augmentation the cache equals the online teacher to fp16 rounding (tested). A degraded variant is a fixed draw:
K variants per image instead of a new degradation every iteration.

Layout: ``<path>`` (torch file: ``{'meta': ..., 'items': {lq_basename: [variant, ...]}}``, a variant being
``{'lq': 3xhxw uint8 or None (the LR file on disk), 'out': CHW, 'feats': [CHW, ...]}``, clean first) and
``<path>.json`` (the meta alone, so a run can check a cache without loading it). The ``.json`` is written last
and carries the build's id: a cache without it, or whose id differs from the data file's, is incomplete (an
interrupted or concurrent build) and is refused with the command that rebuilds it. The data file is loaded
memory-mapped, so a cache larger than RAM is paged from disk.
"""
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from os import path as osp
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from basicsr.data.data_util import paired_paths_from_folder, paired_paths_from_meta_info_file

from ..archs.generator_call import family_of
from ..archs.taps import FeatureTaps
from ..checkpoints import atomic_save
from .degradation import RealESRGANDegrader, degradation_settings, variant_seed

CACHE_VERSION = 2  # 2: LR variants (clean and seeded degradations), image list, build id
REBUILD = 'python -m sdakd_basicsr.tools.teacher_cache -opt <this option file>'


@dataclass(frozen=True)
class CacheVariants:
    """Which LR variants a cache holds per image: the clean LR on disk (``clean``) and ``count`` seeded
    degradations with ``degradation`` (the full settings) from ``seed``."""
    count: int = 0
    seed: int = 0
    clean: bool = True
    degradation: Optional[dict] = field(default=None)

    def __post_init__(self) -> None:
        if self.count < 0 or not (self.clean or self.count):
            raise ValueError(f'a teacher cache needs the clean LR or at least one degraded variant, got {self}')


def cache_meta(teacher_opt: dict, taps: Sequence[str], images: Sequence[str],
               variants: CacheVariants = CacheVariants(), teacher_dtype: str = 'fp32') -> dict:
    """What a cache was made from; a run refuses a cache whose meta differs from its own options."""
    return {'version': CACHE_VERSION, 'teacher_network': dict(teacher_opt['network']),
            'teacher_path': osp.normpath(teacher_opt['path']), 'teacher_param_key': teacher_opt.get('param_key'),
            'teacher_dtype': teacher_dtype, 'taps': list(taps), 'images': sorted(osp.basename(p) for p in images),
            'variants': asdict_json(variants)}


def asdict_json(variants: CacheVariants) -> dict:
    """``variants`` as the cache's ``.json`` holds it (lists, not tuples), for comparisons with it."""
    return json.loads(json.dumps(asdict(variants)))


def build_teacher_cache(teacher: nn.Module, taps: Sequence[str], lq_paths: Sequence[str], gt_paths: Sequence[str],
                        path: str, meta: dict, variants: CacheVariants = CacheVariants(), scale: int = 4,
                        dtype: torch.dtype = torch.float16, batch: int = 8,
                        log: Callable[[str], None] = print) -> int:
    """Run ``teacher`` once on every LR variant of every image (``lq_paths[i]`` is the clean LR of
    ``gt_paths[i]``), ``batch`` LR images of one size at a time; write the cache; return the data file's bytes.
    The old ``.json`` goes first, so an interrupted build never leaves a cache that passes for complete."""
    if osp.exists(f'{path}.json'):
        os.remove(f'{path}.json')
    device = next(teacher.parameters()).device
    family = family_of(teacher)
    if family.channels_last_ok:  # faster convolutions on CPUs (oneDNN) and tensor cores (to float rounding)
        teacher = teacher.to(memory_format=torch.channels_last)
    recorder = FeatureTaps(teacher, list(taps), owner='teacher generator')
    degrader = RealESRGANDegrader(variants.degradation, scale) if variants.count else None
    pairs = sorted(zip(lq_paths, gt_paths))
    items: Dict[str, List[Optional[dict]]] = {}
    pending: Dict[tuple, list] = {}  # LR size -> [(name, variant index, uint8 LR or None, float LR)]
    passes, total = 0, len(pairs) * (int(variants.clean) + variants.count)

    def run(group: list) -> None:
        nonlocal passes
        recorder.clear()
        x = torch.cat([lq for *_, lq in group]).to(device)
        with torch.no_grad():
            out = family.call(teacher, x.contiguous(memory_format=torch.channels_last)
                              if family.channels_last_ok else x)
        feats = recorder.collect()
        for i, (name, k, lq_u8, _) in enumerate(group):
            items[name][k] = {'lq': lq_u8, 'out': out[i].to(dtype).cpu().contiguous(),
                              'feats': [f[i].to(dtype).cpu().contiguous() for f in feats]}
        passes += len(group)
        if passes // (20 * batch) != (passes - len(group)) // (20 * batch) or passes == total:
            log(f'teacher cache: {passes}/{total} teacher passes')

    def add(name: str, k: int, lq_u8: Optional[Tensor], lq: Tensor) -> None:
        group = pending.setdefault(tuple(lq.shape[-2:]), [])
        group.append((name, k, lq_u8, lq))
        if len(group) == batch:
            run(pending.pop(tuple(lq.shape[-2:])))
    try:
        for lq_path, gt_path in pairs:
            name = osp.basename(lq_path)
            items[name] = [None] * (int(variants.clean) + variants.count)
            if variants.clean:
                add(name, 0, None, _read_tensor(lq_path))
            gt = _read_rgb(gt_path) if variants.count else None
            for k in range(variants.count):
                lr, _ = degrader(gt, variant_seed(variants.seed, name, k))
                lr_u8 = torch.from_numpy(lr).permute(2, 0, 1).contiguous()
                add(name, int(variants.clean) + k, lr_u8, lr_u8[None].float() / 255.)
        for group in list(pending.values()):
            run(group)
    finally:
        recorder.remove()
    meta = dict(meta, build_id=uuid.uuid4().hex)
    atomic_save({'meta': meta, 'items': items}, path)
    tmp = f'{path}.json.partial'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, f'{path}.json')  # last: the mark of a complete build
    return os.path.getsize(path)


def read_cache_meta(path: str) -> dict:
    if not osp.isfile(path) or not osp.isfile(f'{path}.json'):
        state = ('is incomplete (its data file has no ' + f'{path}.json: an interrupted build)'
                 if osp.isfile(path) else 'does not exist')
        raise FileNotFoundError(f'datasets.train.teacher_cache: {path} {state}; build it with: {REBUILD}')
    with open(f'{path}.json', encoding='utf-8') as f:
        try:
            return json.load(f)
        except ValueError as err:
            raise ValueError(f'datasets.train.teacher_cache: {path}.json is damaged ({err}); rebuild the cache '
                             f'with: {REBUILD}') from None


def check_cache_matches(path: str, teacher_opt: Optional[dict], taps: Sequence[str],
                        images: Optional[Sequence[str]] = None, variants: CacheVariants = CacheVariants(),
                        teacher_dtype: str = 'fp32') -> None:
    """Stop early when the cache was made from another teacher, other taps, other images or other LR variants
    than the run's (``images``: the run's LR files; None skips that comparison)."""
    if teacher_opt is None:
        raise ValueError('datasets.train.teacher_cache: the stage has no sdakd.teacher_g to check the cache against')
    found, expected = read_cache_meta(path), cache_meta(teacher_opt, taps, images or [], variants, teacher_dtype)
    # a stage without feature distillation (no taps) uses only the cached output
    differ = [k for k in expected if found.get(k) != expected[k] and not (k == 'taps' and not taps)
              and not (k == 'images' and images is None)]
    if differ:
        detail = '; '.join(describe_difference(k, found.get(k), expected[k]) for k in differ)
        raise ValueError(f'datasets.train.teacher_cache: {path} was made for other settings ({detail}); rebuild it '
                         f'with: {REBUILD}')


def describe_difference(key: str, found, expected) -> str:
    """One meta entry of a cache against the run's options, briefly (the keys that differ, not whole dicts)."""
    if key == 'images' and isinstance(found, list):
        extra, missing = sorted(set(found) - set(expected)), sorted(set(expected) - set(found))
        return f'images: {len(missing)} of the run\'s not in the cache {missing[:3]}, {len(extra)} extra {extra[:3]}'
    if key == 'variants' and isinstance(found, dict):
        return 'variants: ' + ', '.join(f'{k} cache {found.get(k)!r} vs options {v!r}' for k, v in expected.items()
                                        if found.get(k) != v)
    return f'{key}: cache {found!r} vs options {expected!r}'


def load_teacher_cache(path: str) -> Dict[str, List[dict]]:
    """The items of a complete cache, memory-mapped; a data file from another build than its ``.json`` (an
    interrupted or concurrent rebuild) is refused."""
    meta = read_cache_meta(path)
    try:
        data = torch.load(path, map_location='cpu', mmap=True, weights_only=True)
    except Exception as err:  # noqa: BLE001  (a truncated or foreign file: unpickling/zip errors of every kind)
        raise ValueError(f'datasets.train.teacher_cache: {path} cannot be read ({type(err).__name__}: '
                         f'{str(err)[:160]}); rebuild it with: {REBUILD}') from None
    if not isinstance(data, dict) or (data.get('meta') or {}).get('build_id') != meta.get('build_id'):
        raise ValueError(f'datasets.train.teacher_cache: {path} and {path}.json come from different builds (an '
                         f'interrupted or concurrent rebuild); rebuild it with: {REBUILD}')
    return data['items']


def crop_and_flip(t: Tensor, top: int, left: int, size: int, hflip: bool, vflip: bool, rot90: bool) -> Tensor:
    """One CHW map cropped at (top, left) and flipped as basicsr's ``augment`` flips HWC images."""
    t = t[..., top:top + size, left:left + size]
    if hflip:
        t = t.flip(-1)
    if vflip:
        t = t.flip(-2)
    if rot90:
        t = t.transpose(-2, -1)
    return t


def scale_of(feature: Tensor, lq: Tensor) -> float:
    """How many feature pixels per LR pixel (1 for RRDBNet's trunk; 4 for an x4 output)."""
    return feature.shape[-1] / lq.shape[-1]


def paired_paths_of(dataset_opt: dict) -> List[tuple]:
    """(LR, GT) files of a paired dataset option block (folder or meta_info), as basicsr's dataset lists them;
    the cache keys them by the LR's basename."""
    folders, keys, tmpl = [dataset_opt['dataroot_lq'], dataset_opt['dataroot_gt']], ['lq', 'gt'], \
        dataset_opt.get('filename_tmpl', '{}')
    if dataset_opt.get('meta_info_file'):
        paths = paired_paths_from_meta_info_file(folders, keys, dataset_opt['meta_info_file'], tmpl)
    else:
        paths = paired_paths_from_folder(folders, keys, tmpl)
    return [(p['lq_path'], p['gt_path']) for p in paths]


def lq_paths_of(dataset_opt: dict) -> List[str]:
    return [lq for lq, _ in paired_paths_of(dataset_opt)]


VARIANT_KEYS = ('degraded', 'seed', 'clean_ratio', 'degradation')  # datasets.<name>.cache_variants


def variants_of(dataset_opt: dict) -> CacheVariants:
    """The LR variants a dataset block's ``cache_variants`` asks for (no block: the clean LR only)."""
    block = dataset_opt.get('cache_variants')
    if not block:
        return CacheVariants()
    count = int(block['degraded'])
    return CacheVariants(count=count, seed=int(block['seed']), clean=float(block['clean_ratio']) > 0 or not count,
                         degradation=degradation_settings(block.get('degradation')) if count else None)


def lq_images_of(dataset_opt: dict) -> Dict[str, Tensor]:
    """Every clean LR image of a paired dataset option block, by basename, as 1x3xhxw RGB."""
    return {osp.basename(path): _read_tensor(path) for path in lq_paths_of(dataset_opt)}


def _read_rgb(path: str) -> np.ndarray:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f'teacher cache: cannot read the image {path}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_tensor(path: str) -> Tensor:
    return torch.from_numpy(_read_rgb(path)).permute(2, 0, 1)[None].float() / 255.
