"""Demo data preparation, the configurable-crop dataset, the report helpers and the demo option files."""
import os
from os import path as osp

import numpy as np
import pytest
import torch
import yaml

from basicsr.archs.rrdbnet_arch import RRDBNet

from sdakd_basicsr.data.demo_images import HELD_OUT_IMAGES, prepare_demo_data
from sdakd_basicsr.metrics import cost, images, quality, reporting

from tests.helpers import REPO, write_images


def test_demo_data_has_meta_info_lr_pairs_and_disjoint_held_out_images(tmp_path):
    paths = prepare_demo_data(str(tmp_path / 'demo'))
    lines = open(paths['meta_info']).read().split('\n')
    names = [line.split(' ')[0] for line in lines if line]
    demo_names = [line.split(' ')[0] for line in open(paths['meta_info_demo']).read().split('\n') if line]
    assert len(names) > 50 and sorted(demo_names) == sorted(os.listdir(paths['train_gt']))
    assert not any(n.startswith(HELD_OUT_IMAGES) for n in demo_names)  # never trained on
    # meta_info.txt: the original tiles (the study's data); the demo's list adds two recoloured copies of each
    # colour tile: the same luminance, another hue
    recoloured = sorted(set(demo_names) - set(names))
    assert recoloured and all('_hue' in n for n in recoloured) and set(names) < set(demo_names)
    import cv2

    from basicsr.utils.color_util import rgb2ycbcr
    original = recoloured[0].rsplit('_hue', 1)[0] + '.png'
    a, b = (cv2.imread(osp.join(paths['train_gt'], n))[..., ::-1] for n in (original, recoloured[0]))
    ya, yb = (rgb2ycbcr(x.astype(np.float32) / 255., y_only=True) * 255 for x in (a, b))
    assert np.abs(ya - yb).mean() < 1.5 and np.abs(a.astype(float) - b).mean() > 5
    import cv2
    gt = cv2.imread(osp.join(paths['train_gt'], names[0]))
    lq = cv2.imread(osp.join(paths['train_lq'], names[0]))
    assert lines[0].endswith(f'({gt.shape[0]},{gt.shape[1]},3)') and lq.shape[0] * 4 == gt.shape[0]
    held = sorted(os.listdir(paths['heldout_gt']))
    assert held == ['astronaut.png', 'stereo_motorcycle.png']
    for name in held:
        g, l_ = cv2.imread(osp.join(paths['heldout_gt'], name)), cv2.imread(osp.join(paths['heldout_lq'], name))
        assert (g.shape[0], g.shape[1]) == (l_.shape[0] * 4, l_.shape[1] * 4)
    stamp = os.path.getmtime(osp.join(paths['train_gt'], names[0]))
    prepare_demo_data(str(tmp_path / 'demo'))  # complete: nothing is rewritten
    assert os.path.getmtime(osp.join(paths['train_gt'], names[0])) == stamp


def test_crop_dataset_uses_the_configured_size_and_lists_the_folder(tmp_path):
    from basicsr.data import build_dataset
    write_images(str(tmp_path / 'gt'), 3, 150)
    opt = yaml.safe_load(open(osp.join(REPO, 'options/sdakd_realesrgan_stage1.yml')))['datasets']['train']
    opt.update(dataroot_gt=str(tmp_path / 'gt'), crop_pad_size=96, phase='train', scale=4)
    opt.pop('meta_info')
    ds = build_dataset(opt)
    assert len(ds) == 3
    item = ds[0]
    assert item['gt'].shape == (3, 96, 96)
    assert item['kernel1'].shape == (21, 21) and item['sinc_kernel'].shape == (21, 21)
    opt['crop_pad_size'] = 200  # larger than the images: reflect-padded up to the size
    assert build_dataset(opt)[1]['gt'].shape == (3, 200, 200)


# docs/method.md section 7, to the precision printed there (MACs per LR pixel)
@pytest.mark.parametrize('feat, grow, macs_per_px, tol', [(64, 32, 17.9e6, 0.05e6), (32, 16, 4.49e6, 0.005e6),
                                                          (16, 8, 1.13e6, 0.005e6), (8, 4, 0.28e6, 0.005e6)])
def test_mac_count_matches_the_reference_table(feat, grow, macs_per_px, tol):
    net = RRDBNet(3, 3, num_feat=feat, num_block=23, num_grow_ch=grow)
    assert cost.count_macs(net, torch.rand(1, 3, 8, 8)) / 64 == pytest.approx(macs_per_px, abs=tol)


def test_evaluate_reports_fidelity_to_the_teacher_and_skips_niqe_on_small_images():
    torch.manual_seed(0)
    teacher = RRDBNet(3, 3, num_feat=8, num_block=1, num_grow_ch=4)
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    lr = gt[::4, ::4].copy()
    messages = []
    res = quality.evaluate({'bicubic': quality.bicubic(4), 'teacher': quality.network(teacher)}, [('x.png', lr, gt)],
                           log=messages.append)
    assert res['teacher']['psnr_teacher'] == float('inf')
    assert 0 < res['bicubic']['psnr_teacher'] < 60 and 0 < res['bicubic']['ssim'] <= 1
    assert np.isnan(res['bicubic']['niqe']) and any('NIQE skipped' in m for m in messages)
    assert res['_outputs']['bicubic']['x.png'].shape == (32, 32, 3)


def test_parse_train_log_and_plot(tmp_path):
    log = tmp_path / 'train.log'
    log.write_text(
        '2026-11-24 06:45:55,687 INFO: [sdakd..][epoch:  0, iter:      10, lr:(1.000e-04,)] [eta: 0:00:30, '
        'time (data): 2.089 (0.007)] l_g_pix: 5.0e-02 l_ds_real: 7.0e-01 out_ds_fake: -1.5e-02 \n'
        '2026-11-24 06:45:57,687 INFO: [sdakd..][epoch:  0, iter:   1,020, lr:(1.000e-04,)] [eta: 0:00:10, '
        'time (data): 2.089 (0.007)] l_g_pix: 4.0e-02 l_ds_real: 6.0e-01 out_ds_fake: -2.5e-02 \n'
        'unrelated line\n')
    series = reporting.parse_train_log(str(log))
    assert series['l_g_pix'] == [(10, 0.05), (1020, 0.04)] and series['out_ds_fake'][1] == (1020, -0.025)
    out = tmp_path / 'curves.png'
    reporting.plot_curves(series, 'stage 2', str(out))
    assert out.stat().st_size > 1000


def test_comparison_grid(tmp_path):
    import cv2
    panels = [(name, np.full((40, 50, 3), i * 40, np.uint8)) for i, name in enumerate(['LR', 'bicubic', 'GT'])]
    images.comparison_grid(panels, str(tmp_path / 'grid.png'))
    img = cv2.imread(str(tmp_path / 'grid.png'))
    assert img.shape == (40 + 22, 3 * 50 + 2 * 4, 3)


def test_demo_option_files_are_wired_stage_to_stage(workdir):
    from sdakd_basicsr.distill.options import parse_sdakd_options
    opts = {s: yaml.safe_load(open(osp.join(REPO, f'options/demo/sdakd_demo_stage{s}.yml'))) for s in range(4)}
    policies = {s: parse_sdakd_options(dict(o, is_train=True)).policy for s, o in opts.items()}
    assert [p.stage for p in policies.values()] == [0, 1, 2, 3]
    assert policies[0].trained_networks == ('net_d_teacher', )
    assert opts[1]['sdakd']['init_student_from_teacher'] is True
    assert opts[2]['path']['pretrain_network_g'] == 'experiments/sdakd_demo_stage1/models/net_g_latest.pth'
    paths = opts[3]['path']
    assert paths['pretrain_network_d_teacher'] == 'experiments/sdakd_demo_stage0/models/net_d_teacher_latest.pth'
    assert paths['pretrain_network_adapters'] == 'experiments/sdakd_demo_stage2/models/net_adapters_latest.pth'
    assert {o['network_g']['num_feat'] for o in opts.values()} == {16}
