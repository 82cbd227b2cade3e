"""The training data on disk, checked at start-up: folders and meta-info entries exist, the set holds images and
at least one batch, a sample of image headers is readable and large enough for the crop (paired data: LR x scale
= GT), and, with ``sdakd.data.verify_images: all``, every image decodes. Called by ``file_schema.check_datasets``.
"""
import os
import time
from os import path as osp
from typing import List, Optional

from PIL import Image

from ..metrics.images import IMAGE_EXTENSIONS, is_image_file
from .schema import OptionError


def check_data_files(spec: dict, where: str, training: bool) -> Optional[List[str]]:
    """Folders and meta-info files exist, and every meta-info entry names an existing image (disk backend).
    Returns the GT file names the set lists (its meta-info, else the image files of ``dataroot_gt``), or None
    when they cannot be listed (another backend, or no single GT folder)."""
    if ((spec.get('io_backend') or {}).get('type') or 'disk') != 'disk':
        return None
    names: Optional[List[str]] = None
    for key in ('dataroot_gt', 'dataroot_lq'):
        folder = spec.get(key)
        if isinstance(folder, str) and not osp.isdir(folder):
            raise OptionError(f'{where}.{key}: no such folder: {folder}')
    for key in ('meta_info', 'meta_info_file'):
        meta = spec.get(key)
        if not meta:
            continue
        if not osp.isfile(meta):
            raise OptionError(f'{where}.{key}: no such file: {meta}')
        with open(meta, encoding='utf-8') as f:
            entries = [line.strip().split(' ')[0] for line in f if line.strip()]
        if not entries:
            raise OptionError(f'{where}.{key}: {meta} lists no images')
        root = spec.get('dataroot_gt') or ''
        missing = [(i + 1, n) for i, n in enumerate(entries) if not osp.isfile(osp.join(root, n))]
        if missing:
            line, name = missing[0]
            raise OptionError(f'{where}.{key}: {meta} line {line} names {osp.join(root, name)}, which does not '
                              f'exist ({len(missing)} of {len(entries)} entries missing)')
        names = entries if names is None else names  # meta_info before meta_info_file
    if not isinstance(spec.get('dataroot_gt'), str):
        return None
    if names is None:
        files = [f for f in os.listdir(spec['dataroot_gt']) if not f.startswith('.')]
        names = sorted(f for f in files if is_image_file(f))
        if training and not names:
            what = 'is empty' if not files else f'holds no images ({len(files)} other entries, e.g. {sorted(files)[0]})'
            raise OptionError(f'{where}.dataroot_gt: {spec["dataroot_gt"]} {what}; images: '
                              f'{", ".join(IMAGE_EXTENSIONS)}')
    return names


SIZE_SAMPLE = 64  # images whose size is read (headers only) at start-up


def _lq_path(spec: dict, gt_name: str) -> str:
    """The LR file of a GT name in paired data, as PairedImageDataset names it (``filename_tmpl``)."""
    stem, ext = osp.splitext(gt_name)
    return osp.join(spec['dataroot_lq'], spec.get('filename_tmpl', '{}').format(stem) + ext)


def _image_size(path: str) -> Optional[tuple]:
    """(width, height) from the header, or None when the file is not a readable image."""
    try:
        with Image.open(path) as img:
            return img.size
    except Exception:  # noqa: BLE001 (any decoder error means: not readable)
        return None


def check_data_sizes(spec: dict, names: List[str], where: str, scale: int, gt_size: Optional[int]) -> None:
    """Training set ``names`` (from ``check_data_files``): enough images for one batch; a sample of them
    readable, large enough for the crop, and (paired data) LR x scale = GT."""
    root = spec['dataroot_gt']
    batch = spec.get('batch_size_per_gpu') or 1
    per_epoch = len(names) * (spec.get('dataset_enlarge_ratio') or 1)
    if per_epoch < batch:
        raise OptionError(f'{where}.batch_size_per_gpu is {batch} but the training set has {len(names)} image(s) '
                          f'(x dataset_enlarge_ratio {spec.get("dataset_enlarge_ratio") or 1}): not one batch per '
                          'epoch, so training would run no iteration; lower the batch size or raise '
                          'dataset_enlarge_ratio')
    crop = spec.get('gt_size') or gt_size
    pad = spec.get('crop_pad_size')
    if crop and pad and crop > pad:
        raise OptionError(f'{where}: the GT crop (gt_size {crop}) is larger than crop_pad_size {pad}')
    for name in names[:SIZE_SAMPLE]:
        gt_path = osp.join(root, name)
        size = _image_size(gt_path)
        if size is None:
            raise OptionError(f'{where}.dataroot_gt: {gt_path} is not a readable image (corrupt or another format)')
        if crop and not pad and min(size) < crop:
            raise OptionError(f'{where}.gt_size: the GT crop {crop} is larger than {gt_path} ({size[0]}x{size[1]}); '
                              'lower gt_size or use larger images')
        if isinstance(spec.get('dataroot_lq'), str):
            lq_path = _lq_path(spec, name)
            lq = _image_size(lq_path)
            if lq is None:
                raise OptionError(f'{where}.dataroot_lq: {lq_path} (the LR of {gt_path}) is missing or unreadable')
            if (lq[0] * scale, lq[1] * scale) != tuple(size):
                raise OptionError(f'{where}: {lq_path} is {lq[0]}x{lq[1]} and its GT {size[0]}x{size[1]}: not the '
                                  f'top-level scale {scale}')


# what a complete file of each format ends with (searched in its last bytes: writers may append padding)
_ENDS = ((b'\xff\xd8', b'\xff\xd9', 'JPEG', 'its end-of-image marker FFD9'),
         (b'\x89PNG', b'IEND', 'PNG', 'its IEND chunk'))
_TAIL = 4096


def truncation_of(path: str) -> Optional[str]:
    """Why ``path`` is a truncated JPEG or PNG (its end marker is missing), or None. Reads the first and the last
    few kilobytes only: no decoding. An entropy-coded JPEG body never holds FFD9 (0xFF is stuffed), so a file cut
    anywhere after its header has none in its tail."""
    try:
        with open(path, 'rb') as f:
            head = f.read(8)
            f.seek(max(0, os.fstat(f.fileno()).st_size - _TAIL))
            tail = f.read()
    except OSError as err:
        return f'cannot be read ({err.strerror})'
    for magic, end, kind, what in _ENDS:
        if head.startswith(magic) and end not in tail:
            return f'is a truncated {kind} ({what} is missing: an interrupted download or copy)'
    return None


def check_file_ends(spec: dict, names: List[str], where: str, log=lambda msg: print(msg, flush=True)) -> int:
    """Every training image (GT and, paired, LR) ends as its format requires (the default start-up check;
    ``verify_images: all`` decodes them instead). Returns the number of files checked."""
    files = [osp.join(spec['dataroot_gt'], n) for n in names]
    if isinstance(spec.get('dataroot_lq'), str):
        files += [_lq_path(spec, n) for n in names]
    start = last = time.time()
    bad = []
    for i, path in enumerate(files, 1):
        why = truncation_of(path) if osp.isfile(path) else None  # a missing file is named by the other checks
        if why:
            bad.append(f'{path} {why}')
        if time.time() - last >= 5:
            last = time.time()
            log(f'checking file ends: {i}/{len(files)} ({last - start:.0f} s)')
    if bad:
        more = f' (and {len(bad) - 3} more)' if len(bad) > 3 else ''
        raise OptionError(f'{where}: ' + '; '.join(bad[:3]) + more + '; replace or remove these files (or set '
                          "datasets.train.on_bad_image: skip to skip them when drawn)")
    return len(files)


def decode_all_images(spec: dict, names: List[str], where: str, time_limit_s: float,
                      log=lambda msg: print(msg, flush=True)) -> int:
    """``sdakd.data.verify_images: all``: decode every training image (GT and, paired, LR) fully, so that a file
    whose header is fine but whose body is truncated or corrupt is named now; progress every 5 s; stops after
    ``time_limit_s`` (0: no limit) saying how many were checked. Returns the number of images decoded."""
    files = [osp.join(spec['dataroot_gt'], n) for n in names]
    if isinstance(spec.get('dataroot_lq'), str):
        files += [_lq_path(spec, n) for n in names]
    start = last = time.time()
    for i, path in enumerate(files, 1):
        try:
            with Image.open(path) as img:
                img.load()  # the whole body: a truncated JPEG/PNG raises here
        except Exception as err:  # noqa: BLE001 (any decoder error: not a usable image)
            raise OptionError(f'{where}: {path} cannot be decoded ({str(err).splitlines()[0][:120]}); replace or '
                              'remove it (sdakd.data.verify_images: all)') from None
        now = time.time()
        if now - last >= 5:
            log(f'verify_images: {i}/{len(files)} images decoded ({now - start:.0f} s)')
            last = now
        if time_limit_s and now - start > time_limit_s and i < len(files):
            log(f'verify_images: time limit {time_limit_s:g} s reached after {i} of {len(files)} images; the rest '
                'are checked when first drawn (raise sdakd.data.verify_time_limit_s to check all)')
            return i
    log(f'verify_images: all {len(files)} training images decode ({time.time() - start:.1f} s)')
    return len(files)
