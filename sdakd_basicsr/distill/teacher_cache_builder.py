"""The teacher cache an SDAKD option file names (``datasets.train.teacher_cache``), built from its teacher, its
taps and its LR images: the option-reading side of ``data/teacher_cache.py`` (which knows nothing of options)."""
from typing import Callable

from ..archs.generator_call import family_of
from ..checkpoints import load_generator
from ..data.teacher_cache import build_teacher_cache, cache_meta, lq_images_of
from .options import parse_sdakd_options


def build_from_options(opt: dict, device: str = 'cpu', log: Callable[[str], None] = print) -> str:
    """Build ``datasets.train.teacher_cache`` for an SDAKD option dict (its teacher, taps and LR images)."""
    dataset_opt = (opt.get('datasets') or {}).get('train') or {}
    path = dataset_opt.get('teacher_cache')
    if not path:
        raise KeyError('datasets.train.teacher_cache: set the file to write (e.g. datasets/<name>/teacher_cache.pt)')
    sd = parse_sdakd_options(opt)
    if sd.teacher_g is None:
        raise KeyError('sdakd.teacher_g: a teacher cache needs the teacher generator')
    teacher = load_generator(sd.teacher_g['network'], sd.teacher_g['path'], sd.teacher_g['param_key'], device,
                             'sdakd.teacher_g.path')
    net = sd.teacher_g['network']
    taps = sd.taps or list(sd.block.taps or family_of(net).taps_for(net))  # stages without FMD: the default taps
    images = lq_images_of(dataset_opt)
    log(f'teacher cache: {len(images)} LR images, taps {taps} -> {path}')
    size = build_teacher_cache(teacher, taps, images, path, cache_meta(sd.teacher_g, taps), log=log)
    log(f'teacher cache: wrote {path} ({size / 2**20:.0f} MiB)')
    return path
