"""The teacher cache an SDAKD option file names (``datasets.train.teacher_cache``), built from its teacher, its
taps, its images and its LR variants: the option-reading side of ``data/teacher_cache.py`` (which knows nothing
of options)."""
import time
from typing import Callable

from ..archs.frozen_dtype import DTYPES, run_in_dtype
from ..archs.generator_call import family_of
from ..checkpoints import load_generator
from ..data.teacher_cache import build_teacher_cache, cache_meta, paired_paths_of, variants_of
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
    if sd.teacher_dtype != 'fp32':  # the teacher as the stage would run it (sdakd.teacher_dtype)
        run_in_dtype(teacher, DTYPES[sd.teacher_dtype])
    net = sd.teacher_g['network']
    taps = sd.taps or list(sd.block.taps or family_of(net).taps_for(net))  # stages without FMD: the default taps
    pairs = paired_paths_of(dataset_opt)
    lq_paths, gt_paths = [lq for lq, _ in pairs], [gt for _, gt in pairs]
    variants = variants_of(dataset_opt)
    kinds = ['clean'] if variants.clean else []
    if variants.count:
        kinds.append(f'{variants.count} degraded (seed {variants.seed})')
    log(f'teacher cache: {len(pairs)} LR images x ({" + ".join(kinds)}) variants, taps {taps} -> {path}')
    start = time.time()
    meta = cache_meta(sd.teacher_g, taps, lq_paths, variants, sd.teacher_dtype)
    size = build_teacher_cache(teacher, taps, lq_paths, gt_paths, path, meta, variants, scale=int(opt.get('scale', 4)),
                               log=log)
    log(f'teacher cache: wrote {path} ({size / 2**20:.0f} MiB) in {time.time() - start:.0f} s')
    return path
