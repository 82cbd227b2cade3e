"""The evaluate command on tiny networks and generated images."""
from os import path as osp

import numpy as np
import pytest
import torch

from basicsr.archs.rrdbnet_arch import RRDBNet

from helpers import write_images, write_options
from sdakd_basicsr.evaluate import main, make_pair, tiled


def tiny(path, feat, grow, seed):
    torch.manual_seed(seed)
    net = RRDBNet(3, 3, num_feat=feat, num_block=1, num_grow_ch=grow)
    torch.save({'params_ema': net.state_dict()}, path)
    return net


def test_evaluate_writes_the_table_grid_and_states_missing_metrics(tmp_path, capsys):
    write_images(str(tmp_path / 'gt'), 2, 48)
    tiny(tmp_path / 't.pth', 8, 4, 0)
    tiny(tmp_path / 's.pth', 4, 2, 1)
    yml = write_options({'network_g': dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1,
                                           num_grow_ch=2), 'path': {'pretrain_network_g': str(tmp_path / 's.pth')}},
                        str(tmp_path / 's.yml'))
    out = tmp_path / 'eval'
    assert main(['--gt', str(tmp_path / 'gt'), '--teacher', f'{tmp_path}/t.pth:8:4:1', '--student', f'a={yml}',
                 '--student', f'b={tmp_path}/s.pth:4:2:1', '--tile', '6', '--out', str(out), '--device', 'cpu']) == 0
    report = (out / 'results.md').read_text()
    for row in ('| bicubic |', '| teacher |', '| a |', '| b |'):
        assert row in report
    assert 'LPIPS not computed' in report and 'FID not computed' in report and 'bicubic x4, seed 0' in report
    rows = list(__import__('csv').DictReader(open(out / 'results.csv')))
    a, b = [r for r in rows if r['generator'] in 'ab']
    assert a['psnr_teacher'] == b['psnr_teacher'] != 'nan'  # the same student twice: same numbers
    assert [r['psnr_teacher'] for r in rows if r['generator'] == 'teacher'] == ['inf']
    assert float(a['psnr']) > 0 and 0 < float(a['ssim_y']) <= 1
    assert osp.getsize(out / 'grid.png') > 1000


def test_tiled_inference_matches_whole_image():
    torch.manual_seed(0)
    net = RRDBNet(3, 3, num_feat=4, num_block=1, num_grow_ch=2).eval()
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        whole = net(x)
    assert torch.allclose(tiled(net, tile=8, overlap=40)(x), whole, atol=1e-5)
    assert tiled(net, tile=8, overlap=4)(x).shape == whole.shape


def test_seeded_realesrgan_degradation_is_reproducible(tmp_path):
    write_images(str(tmp_path / 'gt'), 1, 100)
    gt = np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)
    lr1, gt1 = make_pair(gt, 'realesrgan', 3, str(tmp_path / 'gt'))
    lr2, gt2 = make_pair(gt, 'realesrgan', 3, str(tmp_path / 'gt'))
    assert np.array_equal(lr1, lr2) and np.array_equal(gt1, gt2)
    assert lr1.shape[0] * 4 == gt1.shape[0] and lr1.shape[1] * 4 == gt1.shape[1]
    lr3, _ = make_pair(gt, 'realesrgan', 4, str(tmp_path / 'gt'))
    assert not np.array_equal(lr1, lr3)


def test_bad_student_spec(tmp_path):
    write_images(str(tmp_path / 'gt'), 1, 16)
    with pytest.raises(ValueError, match='expected options.yml or ckpt.pth'):
        main(['--gt', str(tmp_path / 'gt'), '--student', 'x=nothing.pth', '--out', str(tmp_path / 'o')])
