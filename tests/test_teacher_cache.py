"""Teacher cache: equals the online teacher on the same crops, moves with each crop/flip, replaces the
teacher's forward pass in training, and refuses caches made for other settings."""
import os
import random
from os import path as osp

import cv2
import pytest
import torch

from basicsr.data import build_dataset

from sdakd_basicsr.archs.taps import FeatureTaps
from sdakd_basicsr.data.teacher_cache import crop_and_flip, lq_images_of
from sdakd_basicsr.distill.teacher_cache_builder import build_from_options
from sdakd_basicsr.models.teacher_side import TeacherSide

from tests.helpers import TAPS, TEACHER_G, TEACHER_G_FILE, build, tiny_options, write_images


def paired_data(root, n=3, size=64):
    write_images(osp.join(root, 'datasets/pairs/gt'), n, size, seed=3)
    os.makedirs(osp.join(root, 'datasets/pairs/lq'), exist_ok=True)
    for name in os.listdir(osp.join(root, 'datasets/pairs/gt')):
        img = cv2.imread(osp.join(root, 'datasets/pairs/gt', name))
        cv2.imwrite(osp.join(root, 'datasets/pairs/lq', name),
                    cv2.resize(img, (size // 4, size // 4), interpolation=cv2.INTER_AREA))


def cached_options(stage=2, gt_size=64, flips=False, **extra):
    opt = tiny_options(stage, **extra)
    opt['high_order_degradation'] = False
    opt['datasets']['train'] = dict(
        name='pairs', type='TeacherCachedPairedDataset', dataroot_gt='datasets/pairs/gt',
        dataroot_lq='datasets/pairs/lq',
        teacher_cache='datasets/pairs/teacher_cache.pt', filename_tmpl='{}', io_backend={'type': 'disk'},
        gt_size=gt_size, use_hflip=flips, use_rot=flips, use_shuffle=False, num_worker_per_gpu=0,
        batch_size_per_gpu=2, dataset_enlarge_ratio=1, prefetch_mode=None, pin_memory=False)
    return opt


def dataset(opt):
    ds_opt = dict(opt['datasets']['train'], phase='train', scale=opt['scale'])
    return build_dataset(ds_opt)


def online_teacher():
    teacher = build(TEACHER_G)
    teacher.load_state_dict(torch.load(TEACHER_G_FILE)['params_ema'])
    return teacher.eval()


def online(teacher, lq):
    taps = FeatureTaps(teacher, TAPS)
    with torch.no_grad():
        out = teacher(lq)
    feats = taps.collect()
    taps.remove()
    return out, feats


def test_whole_image_cache_equals_the_online_teacher(workdir):
    paired_data(workdir)
    opt = cached_options()
    build_from_options(opt, log=lambda m: None)
    item = dataset(opt)[0]  # gt_size = the image: the crop is the whole image, no flips
    out, feats = online(online_teacher(), item['lq'][None])
    assert len(item['teacher_feats']) == len(TAPS)
    # stored in fp16: equal to its rounding
    assert torch.allclose(item['teacher_out'], out[0], atol=2e-3, rtol=1e-3)
    for cached, live in zip(item['teacher_feats'], feats):
        assert cached.shape == live[0].shape
        assert torch.allclose(cached, live[0], atol=2e-3 * live.abs().max().item() + 1e-3, rtol=1e-3)


def test_cached_maps_move_with_every_crop_and_flip(workdir):
    paired_data(workdir)
    opt = cached_options(gt_size=32, flips=True)
    build_from_options(opt, log=lambda m: None)
    ds = dataset(opt)
    teacher = online_teacher()
    full_lq = lq_images_of(opt['datasets']['train'])
    seen_flips = set()
    for seed in range(8):
        random.seed(seed)
        item = ds[1]
        random.seed(seed)  # replay the dataset's draws: crop corner, then hflip / vflip / rot90
        h, w = full_lq[osp.basename(item['lq_path'])].shape[-2:]
        top, left = random.randint(0, h - 8), random.randint(0, w - 8)
        flips = tuple(random.random() < 0.5 for _ in range(3))
        seen_flips.add(flips)
        lq = full_lq[osp.basename(item['lq_path'])]
        assert torch.equal(item['lq'], crop_and_flip(lq[0], top, left, 8, *flips))
        out, feats = online(teacher, lq)
        assert torch.allclose(item['teacher_out'], crop_and_flip(out[0], top * 4, left * 4, 32, *flips), atol=2e-3)
        assert torch.allclose(item['teacher_feats'][0], crop_and_flip(feats[0][0], top, left, 8, *flips),
                              atol=2e-3 * feats[0].abs().max().item() + 1e-3)
        gt = cv2.cvtColor(cv2.imread(item['gt_path']), cv2.COLOR_BGR2RGB)
        gt = torch.from_numpy(gt).permute(2, 0, 1).float() / 255.
        assert torch.allclose(item['gt'], crop_and_flip(gt, top * 4, left * 4, 32, *flips), atol=1e-6)
    assert len(seen_flips) > 2


def test_training_with_the_cache_never_runs_the_teacher(workdir, monkeypatch, run_train):
    paired_data(workdir)
    opt = cached_options(stage=2, total_iter=2)
    opt['name'] = 'cached_stage2'
    opt['path'].update(pretrain_network_g=None, pretrain_network_d=None, pretrain_network_adapters=None)
    build_from_options(opt, log=lambda m: None)
    teacher_passes, fmd_values = [], []
    original_forward, original_fmd = TeacherSide.forward, TeacherSide.fmd_term

    def spy(self, lq, cond, noise, need_output, cached=None):
        teacher_passes.append(cached is None)
        return original_forward(self, lq, cond, noise, need_output, cached)

    def fmd_spy(self, loss):
        value = original_fmd(self, loss)
        fmd_values.append(value.item())
        return value

    monkeypatch.setattr(TeacherSide, 'forward', spy)
    monkeypatch.setattr(TeacherSide, 'fmd_term', fmd_spy)
    exp = run_train(opt)
    assert teacher_passes == [False, False]  # two iterations, both from the cache
    assert len(fmd_values) == 2 and all(v > 0 for v in fmd_values)
    assert osp.isfile(osp.join(exp, 'models', 'net_g_latest.pth'))


@pytest.mark.parametrize('change, match', [
    ({'sdakd.taps': ['body.0', 'conv_body']}, 'taps'),
    ({'high_order_degradation': True}, 'high_order_degradation'),
    ({'sdakd.teacher_dtype': 'bf16'}, "teacher_dtype: cache 'fp32' vs options 'bf16'"),
])
def test_a_cache_for_other_settings_is_refused_before_training(workdir, change, match, build_model_from):
    paired_data(workdir)
    opt = cached_options(stage=2)
    opt['path'].update(pretrain_network_g=None, pretrain_network_d=None, pretrain_network_adapters=None)
    build_from_options(opt, log=lambda m: None)
    for key, value in change.items():
        node = opt
        *parents, leaf = key.split('.')
        for p in parents:
            node = node[p]
        node[leaf] = value
    with pytest.raises(ValueError, match=match):
        build_model_from(opt)


def test_missing_cache_names_the_command_that_builds_it(workdir):
    paired_data(workdir)
    with pytest.raises(FileNotFoundError, match='tools.teacher_cache'):
        dataset(cached_options())
