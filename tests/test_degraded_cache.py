"""The degraded teacher cache: K seeded Real-ESRGAN degradations per image with the teacher's output on each. It
round-trips bit-exactly, is reproducible from its seed, is refused when stale or half-written (with the command
that rebuilds it), and the dataset draws variants as the options say."""
import json
import os
import random
import shutil
from collections import Counter
from os import path as osp

import numpy as np
import pytest
import torch

from sdakd_basicsr.data import teacher_cache as tc
from sdakd_basicsr.data.degradation import RealESRGANDegrader, degradation_settings, seeded, variant_seed
from sdakd_basicsr.distill.schema import OptionError
from sdakd_basicsr.distill.teacher_cache_builder import build_from_options
from sdakd_basicsr.metrics.images import read_rgb

from tests.test_teacher_cache import cached_options, dataset, online_teacher, paired_data

CACHE = 'datasets/pairs/teacher_cache.pt'


def degraded_options(degraded=2, seed=0, clean_ratio=0.5, degradation=None, **extra):
    opt = cached_options(**extra)
    opt['datasets']['train']['cache_variants'] = dict(degraded=degraded, seed=seed, clean_ratio=clean_ratio,
                                                      degradation=degradation)
    return opt


def items(path=CACHE):
    return torch.load(path, map_location='cpu')['items']


def test_degraded_variants_round_trip_bit_exactly(workdir, monkeypatch):
    paired_data(workdir)
    saved = {}
    original_save = tc.atomic_save

    def spy(obj, path):  # what the build computed, before it is written
        saved.update(obj)
        original_save(obj, path)
    monkeypatch.setattr(tc, 'atomic_save', spy)
    opt = degraded_options(degraded=2, seed=7, clean_ratio=0.5)
    build_from_options(opt, log=lambda m: None)
    teacher = online_teacher()
    degrader = RealESRGANDegrader(degradation_settings())
    cached = tc.load_teacher_cache(CACHE)
    assert sorted(cached) == sorted(saved['items']) == sorted(os.listdir('datasets/pairs/lq'))
    for name, variants in cached.items():
        assert len(variants) == 3 and variants[0]['lq'] is None  # the clean LR first, on disk
        gt = read_rgb(osp.join('datasets/pairs/gt', name))
        for v, built in zip(variants, saved['items'][name]):  # the file gives back exactly what was built
            assert torch.equal(v['out'], built['out'])
            assert all(torch.equal(a, b) for a, b in zip(v['feats'], built['feats']))
        for k, variant in enumerate(variants[1:]):
            lr, _ = degrader(gt, variant_seed(7, name, k))
            assert variant['lq'].dtype == torch.uint8
            assert torch.equal(variant['lq'], torch.from_numpy(lr).permute(2, 0, 1))  # exactly the LR it saw
            with torch.no_grad():
                out = teacher(variant['lq'][None].float() / 255.)
            assert variant['out'].dtype == torch.float16  # the teacher's output on that LR, to fp16 rounding
            assert torch.allclose(variant['out'].float(), out[0], atol=2e-3, rtol=1e-3)
        assert not torch.equal(variants[1]['lq'], variants[2]['lq'])  # two different draws


def test_the_cache_is_reproducible_from_its_seed(workdir):
    paired_data(workdir)
    build_from_options(degraded_options(seed=3), log=lambda m: None)
    first = items()
    random.seed(99)  # other random state in the process changes nothing
    torch.manual_seed(99)
    build_from_options(degraded_options(seed=3), log=lambda m: None)
    second = items()
    for name in first:
        for a, b in zip(first[name], second[name]):
            assert (a['lq'] is None and b['lq'] is None) or torch.equal(a['lq'], b['lq'])
            assert torch.equal(a['out'], b['out']) and all(torch.equal(x, y) for x, y in zip(a['feats'], b['feats']))
    build_from_options(degraded_options(seed=4), log=lambda m: None)
    other = items()
    assert all(not torch.equal(first[n][1]['lq'], other[n][1]['lq']) for n in first)


def test_a_variant_does_not_depend_on_the_other_images():
    gt = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    degrader = RealESRGANDegrader()
    assert variant_seed(0, 'a.png', 1) == variant_seed(0, 'a.png', 1)
    assert len({variant_seed(0, 'a.png', k) for k in range(4)} | {variant_seed(1, 'a.png', 0)}) == 5
    with seeded(5):  # whatever ran before, the same seed gives the same LR
        np.random.random(10)
        first = degrader(gt, 11)[0]
    states = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    assert np.array_equal(first, degrader(gt, 11)[0])
    # and a training process's own random sequence is left as it was
    assert random.getstate() == states[0] and np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])


@pytest.mark.parametrize('change, match', [
    (dict(degraded=3), 'variants: count cache 2 vs options 3'),
    (dict(seed=1), 'variants: seed cache 0 vs options 1'),
    (dict(clean_ratio=0.0), 'variants: clean cache True vs options False'),
    (dict(degradation={'jpeg_range': [60, 95]}), 'variants: degradation'),
])
def test_a_stale_cache_is_refused_before_training_with_rebuild_command(workdir, build_model_from, change, match):
    paired_data(workdir)
    opt = degraded_options(stage=2)
    opt['path'].update(pretrain_network_g=None, pretrain_network_d=None, pretrain_network_adapters=None)
    build_from_options(opt, log=lambda m: None)
    opt['datasets']['train']['cache_variants'].update(change)
    with pytest.raises(ValueError, match=match) as err:
        build_model_from(opt)
    assert 'python -m sdakd_basicsr.tools.teacher_cache -opt' in str(err.value)


def test_a_cache_for_other_images_is_refused(workdir, build_model_from):
    paired_data(workdir)
    opt = degraded_options(stage=2)
    opt['path'].update(pretrain_network_g=None, pretrain_network_d=None, pretrain_network_adapters=None)
    build_from_options(opt, log=lambda m: None)
    for folder in ('gt', 'lq'):
        src = sorted(os.listdir(f'datasets/pairs/{folder}'))[0]
        shutil.copy(f'datasets/pairs/{folder}/{src}', f'datasets/pairs/{folder}/new_{src}')
    with pytest.raises(ValueError, match=r"images: 1 of the run's not in the cache \['new_") as err:
        build_model_from(opt)
    assert 'tools.teacher_cache' in str(err.value)


def test_an_interrupted_build_leaves_no_cache_that_passes_for_complete(workdir, monkeypatch):
    paired_data(workdir)
    opt = degraded_options()
    build_from_options(opt, log=lambda m: None)  # a complete cache, then a rebuild that dies half-way
    calls = []
    original = RealESRGANDegrader.__call__

    def dies(self, gt, seed):
        calls.append(seed)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, gt, seed)
    monkeypatch.setattr(RealESRGANDegrader, '__call__', dies)
    with pytest.raises(KeyboardInterrupt):
        build_from_options(degraded_options(seed=1), log=lambda m: None)
    assert osp.isfile(CACHE) and not osp.isfile(f'{CACHE}.json')
    with pytest.raises(FileNotFoundError, match='is incomplete.*interrupted build.*tools.teacher_cache'):
        dataset(opt)
    with pytest.raises(FileNotFoundError, match='incomplete'):
        tc.check_cache_matches(CACHE, opt['sdakd']['teacher_g'], [])


def test_a_data_file_from_another_build_or_truncated_is_refused(workdir):
    paired_data(workdir)
    opt = degraded_options()
    build_from_options(opt, log=lambda m: None)
    shutil.copy(f'{CACHE}.json', 'old.json')
    build_from_options(opt, log=lambda m: None)  # the same settings, a new build id
    shutil.copy('old.json', f'{CACHE}.json')
    with pytest.raises(ValueError, match='come from different builds.*tools.teacher_cache'):
        dataset(opt)
    build_from_options(opt, log=lambda m: None)
    with open(CACHE, 'r+b') as f:
        f.truncate(os.path.getsize(CACHE) // 2)
    with pytest.raises(ValueError, match='cannot be read.*tools.teacher_cache'):
        dataset(opt)
    with open(f'{CACHE}.json', 'w') as f:
        f.write('{"version": 2, "tea')
    with pytest.raises(ValueError, match='json is damaged.*tools.teacher_cache'):
        dataset(opt)


def test_the_dataset_draws_variants_as_the_options_say(workdir):
    paired_data(workdir, n=2)
    opt = degraded_options(degraded=3, clean_ratio=0.25, gt_size=64)  # whole images: the item is the variant
    build_from_options(opt, log=lambda m: None)
    ds = dataset(opt)
    cached = tc.load_teacher_cache(CACHE)
    drawn = Counter()
    random.seed(0)
    for _ in range(400):
        item = ds[0]
        variants = cached[osp.basename(item['lq_path'])]
        which = [i for i, v in enumerate(variants) if torch.equal(v['out'].float(), item['teacher_out'])]
        assert len(which) == 1
        i = which[0]
        if variants[i]['lq'] is not None:
            assert torch.equal(item['lq'], variants[i]['lq'].float() / 255.)
        drawn[i] += 1
    assert abs(drawn[0] / 400 - 0.25) < 0.07  # the clean LR by clean_ratio
    assert all(abs(drawn[k] / 400 - 0.25) < 0.07 for k in (1, 2, 3))  # the rest uniform over the K
    # clean_ratio 0: neither cached nor drawn
    opt = degraded_options(degraded=2, clean_ratio=0.0, gt_size=64)
    build_from_options(opt, log=lambda m: None)
    ds = dataset(opt)
    assert all(len(v) == 2 and v[0]['lq'] is not None for v in tc.load_teacher_cache(CACHE).values())
    clean = torch.from_numpy(read_rgb(ds[0]['lq_path'])).permute(2, 0, 1).float() / 255.
    assert all(not torch.equal(ds[0]['lq'], clean) for _ in range(20))


def test_the_cache_is_memory_mapped(workdir):
    paired_data(workdir)
    build_from_options(degraded_options(), log=lambda m: None)
    cached = tc.load_teacher_cache(CACHE)
    assert next(iter(cached.values()))[1]['out'].dtype == torch.float16
    with open('/proc/self/maps') as f:  # the file is mapped into memory, not read into it
        assert osp.realpath(CACHE) in f.read()


@pytest.mark.parametrize('block, match', [
    (dict(degraded=2, seed=0, clean_ratio=1.5), 'cache_variants.clean_ratio must be <= 1'),
    (dict(degraded=0, seed=0, clean_ratio=0), 'leave no LR to train on'),
    (dict(degraded=2, seed=0), r'cache_variants.clean_ratio is required'),
    (dict(degraded=2, seed=0, clean_ratio=0.2, degradation={'jpeg_rnage': [30, 95]}),
     r"degradation.jpeg_rnage: unknown key \(did you mean 'jpeg_range'\?\)"),
    (dict(degraded=2, seed=0, clean_ratio=0.2, degradation={'jpeg_range': [95, 30]}), 'low <= high'),
    (dict(degraded=2, seed=0, clean_ratio=0.2, degradation={'kernel_prob': [1.0]}), 'kernel_prob must be 6'),
    (dict(degraded=2, seed=0, clean_ratio=0.2, degradation={'l1_gt_usm': False}), 'unknown key'),
    ('2', 'cache_variants must be a mapping'),
])
def test_bad_cache_variants_are_named_before_anything_runs(workdir, block, match):
    from sdakd_basicsr.distill.file_schema import check_option_file
    paired_data(workdir)
    opt = cached_options()
    opt['datasets']['train']['cache_variants'] = block
    with pytest.raises((OptionError, KeyError, ValueError), match=match):
        check_option_file(opt)


def test_cache_variants_need_a_cache_file(workdir):
    from sdakd_basicsr.distill.file_schema import check_option_file
    paired_data(workdir)
    opt = degraded_options()
    del opt['datasets']['train']['teacher_cache']
    opt['datasets']['train']['type'] = 'PairedImageDataset'
    with pytest.raises(OptionError, match='there is no teacher_cache file'):
        check_option_file(opt)


def test_the_json_holds_what_the_cache_was_made_from(workdir):
    paired_data(workdir)
    build_from_options(degraded_options(degradation={'jpeg_range': [40, 80]}), log=lambda m: None)
    meta = json.load(open(f'{CACHE}.json'))
    assert meta['variants']['count'] == 2 and meta['variants']['degradation']['jpeg_range'] == [40, 80]
    assert meta['variants']['degradation']['noise_range'] == degradation_settings()['noise_range']
    assert meta['images'] == sorted(os.listdir('datasets/pairs/lq'))


def test_the_degradation_is_basicsrs_own_synthesis():
    """The degrader skips only what the LR does not need: its LR equals basicsr's RealESRGANModel.feed_data with
    a real USM sharpener (Real-ESRGAN degrades the sharpened GT) on the same seed and kernels."""
    from basicsr.models.realesrgan_model import RealESRGANModel
    from basicsr.utils import DiffJPEG, USMSharp

    from sdakd_basicsr.metrics.images import to_image, to_tensor
    gt = (np.random.default_rng(1).random((96, 96, 3)) * 255).astype(np.uint8)
    degrader = RealESRGANDegrader()
    for seed in range(4):
        with seeded(seed):
            kernels = {k: v[None] for k, v in degrader._kernels.sample_kernels().items()}
            host = type('Host', (), {})()
            host.opt, host.is_train, host.device = dict(degrader._opt, gt_size=96), True, torch.device('cpu')
            host.jpeger, host.usm_sharpener = DiffJPEG(differentiable=False), USMSharp()
            host._dequeue_and_enqueue = lambda: None
            RealESRGANModel.feed_data(host, {'gt': to_tensor(gt), **kernels})
        assert np.array_equal(degrader(gt, seed)[0], to_image(host.lq))


def test_the_cache_tool_names_bad_inputs_and_leaves_no_complete_looking_cache(workdir, capsys):
    from sdakd_basicsr.tools.teacher_cache import main

    from tests.helpers import write_options
    paired_data(workdir)
    assert main(['-opt', 'missing.yml']) == 2 and 'missing.yml' in capsys.readouterr().err
    opt = degraded_options()
    no_cache = degraded_options()
    del no_cache['datasets']['train']['teacher_cache']
    assert main(['-opt', write_options(no_cache, 'no_cache.yml')]) == 2
    assert 'datasets.train.teacher_cache: set the file to write' in capsys.readouterr().err
    path = write_options(opt, 'ok.yml')
    assert main(['-opt', path]) == 0 and osp.isfile(f'{CACHE}.json')
    name = sorted(os.listdir('datasets/pairs/gt'))[-1]
    open(osp.join('datasets/pairs/gt', name), 'wb').write(b'damaged')  # its degraded variants cannot be made
    assert main(['-opt', path]) == 2
    assert f'cannot read the image datasets/pairs/gt/{name}' in capsys.readouterr().err
    assert not osp.isfile(f'{CACHE}.json')  # the old cache is no longer taken for complete
