"""Teacher cache for fixed LR data: the frozen teacher's output and tapped features, computed once per image.

With paired data on disk (the LR never changes), the teacher's forward pass is the same every epoch. The
cache holds, per LR image, the teacher output and the feature maps of ``sdakd.taps`` in half precision;
``TeacherCachedPairedDataset`` crops and flips them together with the LR/GT crop, and the model uses them
instead of running the teacher (docs/training.md, "Teacher cache").

What differs from the online teacher: the cached maps are the teacher's response to the *whole* image, then
cropped (near a crop's border the online teacher would see zero padding instead of the real context) and
flipped/rotated (the online teacher would process the flipped input). With whole-image crops and no
augmentation the cache equals the online teacher to fp16 rounding (tested).

Layout: ``<path>`` (torch file: ``{'meta': ..., 'items': {lq_basename: {'out': CHW, 'feats': [CHW, ...]}}}``)
and ``<path>.json`` (the meta alone, so a run can check a cache without loading it).
"""
import json
import os
from os import path as osp
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import torch
from torch import Tensor, nn

from basicsr.data.data_util import paired_paths_from_folder, paired_paths_from_meta_info_file

from ..archs.generator_call import family_of
from ..archs.taps import FeatureTaps
from ..checkpoints import atomic_save

CACHE_VERSION = 1


def cache_meta(teacher_opt: dict, taps: Sequence[str]) -> dict:
    """What a cache was made from; a run refuses a cache whose meta differs from its own options."""
    return {'version': CACHE_VERSION, 'teacher_network': dict(teacher_opt['network']),
            'teacher_path': osp.normpath(teacher_opt['path']), 'teacher_param_key': teacher_opt.get('param_key'),
            'taps': list(taps)}


def build_teacher_cache(teacher: nn.Module, taps: Sequence[str], lq_images: Dict[str, Tensor], path: str,
                        meta: dict, dtype: torch.dtype = torch.float16,
                        log: Callable[[str], None] = print) -> int:
    """Run ``teacher`` once on every LR image (name -> 1x3xhxw in [0, 1]); write the cache; return its bytes."""
    device = next(teacher.parameters()).device
    recorder = FeatureTaps(teacher, list(taps), owner='teacher generator')
    family = family_of(teacher)
    items = {}
    try:
        for i, (name, lq) in enumerate(sorted(lq_images.items())):
            recorder.clear()
            with torch.no_grad():
                out = family.call(teacher, lq.to(device))
            items[name] = {'out': out[0].to(dtype).cpu(), 'feats': [f[0].to(dtype).cpu() for f in recorder.collect()]}
            if (i + 1) % 20 == 0 or i + 1 == len(lq_images):
                log(f'teacher cache: {i + 1}/{len(lq_images)} images')
    finally:
        recorder.remove()
    atomic_save({'meta': meta, 'items': items}, path)
    with open(f'{path}.json', 'w', encoding='utf-8') as f:
        json.dump(meta, f, indent=1)
    return os.path.getsize(path)


def read_cache_meta(path: str) -> dict:
    if not osp.isfile(path) or not osp.isfile(f'{path}.json'):
        raise FileNotFoundError(f'datasets.train.teacher_cache: {path} (or its {path}.json) does not exist; build '
                                f'it with: python -m sdakd_basicsr.tools.teacher_cache -opt <this option file>')
    with open(f'{path}.json', encoding='utf-8') as f:
        return json.load(f)


def check_cache_matches(path: str, teacher_opt: Optional[dict], taps: Sequence[str]) -> None:
    """Stop early when the cache was made from another teacher or other taps than the run's."""
    if teacher_opt is None:
        raise ValueError('datasets.train.teacher_cache: the stage has no sdakd.teacher_g to check the cache against')
    found, expected = read_cache_meta(path), cache_meta(teacher_opt, taps)
    # a stage without feature distillation (no taps) uses only the cached output
    differ = [k for k in expected if found.get(k) != expected[k] and not (k == 'taps' and not taps)]
    if differ:
        detail = '; '.join(f'{k}: cache {found.get(k)!r} vs options {expected[k]!r}' for k in differ)
        raise ValueError(f'datasets.train.teacher_cache: {path} was made for other settings ({detail}); rebuild it '
                         f'with python -m sdakd_basicsr.tools.teacher_cache -opt <this option file>')


def load_teacher_cache(path: str) -> Dict[str, dict]:
    return torch.load(path, map_location='cpu')['items']


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


def lq_paths_of(dataset_opt: dict) -> List[str]:
    """The LR files of a paired dataset option block (folder or meta_info), as basicsr's dataset lists them;
    the cache keys them by basename."""
    folders, keys, tmpl = [dataset_opt['dataroot_lq'], dataset_opt['dataroot_gt']], ['lq', 'gt'], \
        dataset_opt.get('filename_tmpl', '{}')
    if dataset_opt.get('meta_info_file'):
        paths = paired_paths_from_meta_info_file(folders, keys, dataset_opt['meta_info_file'], tmpl)
    else:
        paths = paired_paths_from_folder(folders, keys, tmpl)
    return [p['lq_path'] for p in paths]


def lq_images_of(dataset_opt: dict) -> Dict[str, Tensor]:
    """Every LR image of a paired dataset option block, by basename, as 1x3xhxw RGB."""
    images = {}
    for path in lq_paths_of(dataset_opt):
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f'teacher cache: cannot read the LR image {path}')
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        images[osp.basename(path)] = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.
    return images
