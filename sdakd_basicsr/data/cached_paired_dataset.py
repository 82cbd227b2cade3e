"""Paired LR/GT data with the teacher's cached output and features, cropped and flipped with each pair.

``TeacherCachedPairedDataset`` takes basicsr's ``PairedImageDataset`` options plus ``teacher_cache`` (a file
written by ``python -m sdakd_basicsr.tools.teacher_cache``) and, optionally, ``cache_variants`` (the LR
variants the cache holds: the clean LR on disk and K seeded Real-ESRGAN degradations of the GT). Each visit of an
image draws one variant — the clean LR with probability ``clean_ratio``, else one of the K degraded ones,
uniformly — and the item adds ``teacher_out`` (CHW, HR) and ``teacher_feats`` (a list of CHW maps in tap order)
of that variant, cut at the same place and flipped the same way as the LR/GT crop; the SDAKD model then skips
the teacher's forward pass. See ``teacher_cache.py`` for what this changes against the online teacher.
"""
import random
from os import path as osp

import torch

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils import imfrombytes, img2tensor
from basicsr.utils.file_client import FileClient
from basicsr.utils.registry import DATASET_REGISTRY

from .teacher_cache import (REBUILD, asdict_json, crop_and_flip, describe_difference, load_teacher_cache,
                            read_cache_meta, scale_of, variants_of)


@DATASET_REGISTRY.register()
class TeacherCachedPairedDataset(PairedImageDataset):

    def __init__(self, opt: dict) -> None:
        super().__init__(opt)
        self.cache_path = opt['teacher_cache']
        meta = read_cache_meta(self.cache_path)  # a missing cache stops the run here, with the command that builds it
        self.variants = variants_of(opt)
        if meta.get('variants') != asdict_json(self.variants):
            raise ValueError(f'datasets.{opt.get("name", "train")}.cache_variants: {self.cache_path} holds other LR '
                             f'variants than the options ask for ('
                             f'{describe_difference("variants", meta.get("variants"), asdict_json(self.variants))}); '
                             f'rebuild it with: {REBUILD}')
        self.cache = load_teacher_cache(self.cache_path)
        self.clean_ratio = float(opt['cache_variants']['clean_ratio']) if self.variants.count else 1.0
        missing = [p['lq_path'] for p in self.paths if osp.basename(p['lq_path']) not in self.cache]
        if missing:
            raise KeyError(f'datasets.{opt.get("name", "train")}.teacher_cache: {self.cache_path} has no entry for '
                           f'{len(missing)} LR images, e.g. {missing[:3]}; rebuild it for this dataset')

    def draw_variant(self, variants: list) -> dict:
        """The clean variant (first in the cache) with probability ``clean_ratio``, else a degraded one."""
        v = self.variants
        if not v.count or (v.clean and random.random() < self.clean_ratio):
            return variants[0]
        return variants[int(v.clean) + random.randrange(v.count)]

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop('type'), **self.io_backend_opt)
        scale = self.opt['scale']
        paths = self.paths[index]
        gt = img2tensor(imfrombytes(self.file_client.get(paths['gt_path'], 'gt'), float32=True), bgr2rgb=True)
        item = self.draw_variant(self.cache[osp.basename(paths['lq_path'])])
        if item['lq'] is None:  # the clean LR, on disk
            lq = img2tensor(imfrombytes(self.file_client.get(paths['lq_path'], 'lq'), float32=True), bgr2rgb=True)
        else:  # a degraded variant: exactly the LR the teacher saw
            lq = item['lq'].float() / 255.
        out, feats = item['out'], list(item['feats'])
        if tuple(out.shape[-2:]) != tuple(gt.shape[-2:]):
            raise ValueError(f'teacher cache {self.cache_path}: output {tuple(out.shape[-2:])} for {paths["lq_path"]} '
                             f'but its GT is {tuple(gt.shape[-2:])}; rebuild the cache')
        if self.opt['phase'] == 'train':
            lq_size = self.opt['gt_size'] // scale
            h, w = lq.shape[-2:]
            if h < lq_size or w < lq_size:
                raise ValueError(f'{paths["lq_path"]}: LR {h}x{w} is smaller than gt_size / scale = {lq_size}')
            top, left = random.randint(0, h - lq_size), random.randint(0, w - lq_size)
            # the same draws as basicsr's augment(): hflip, then vflip and rot90 when rotation is on
            hflip = self.opt.get('use_hflip', False) and random.random() < 0.5
            vflip = self.opt.get('use_rot', False) and random.random() < 0.5
            rot90 = self.opt.get('use_rot', False) and random.random() < 0.5

            def cut(t: torch.Tensor, s: float) -> torch.Tensor:
                return crop_and_flip(t, int(top * s), int(left * s), int(lq_size * s), hflip, vflip, rot90)

            feats = [cut(f, scale_of(f, lq)) for f in feats]
            gt, out = cut(gt, scale), cut(out, scale)
            lq = cut(lq, 1)
        return {'lq': lq.contiguous(), 'gt': gt.contiguous(), 'lq_path': paths['lq_path'], 'gt_path': paths['gt_path'],
                'teacher_out': out.float().contiguous(), 'teacher_feats': [f.float().contiguous() for f in feats]}
