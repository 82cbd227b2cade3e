"""The x2 family (RealESRGAN_x2plus teacher: RRDBNet with pixel-unshuffle input): the generated option files
run all three stages on tiny x2 networks, with taps, adapters and channel-selection init at the unshuffled
resolution, and the student loads strictly into a plain x2 RRDBNet."""
import os
from os import path as osp

import torch
import yaml

from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
from basicsr.archs.rrdbnet_arch import RRDBNet

from tests.helpers import REPO, STUDENT_G, TAPS, TEACHER_G, shrink


def x2_options(stage, **extra):
    with open(osp.join(REPO, 'options', f'sdakd_realesrgan_x2_stage{stage}.yml')) as f:
        opt = shrink(yaml.safe_load(f), val=True, **extra)
    opt['sdakd']['teacher_g']['network']['scale'] = 2
    opt['datasets']['val']['dataroot_lq'] = 'datasets/val/lq_x2'
    return opt


def x2_validation_pairs():
    import cv2
    os.makedirs('datasets/val/lq_x2', exist_ok=True)
    for name in os.listdir('datasets/val/gt'):
        img = cv2.imread(osp.join('datasets/val/gt', name))
        cv2.imwrite(osp.join('datasets/val/lq_x2', name), cv2.resize(img, (16, 16), interpolation=cv2.INTER_AREA))


def test_x2_files_are_wired_for_the_x2plus_teacher():
    for stage in (1, 2, 3):
        with open(osp.join(REPO, 'options', f'sdakd_realesrgan_x2_stage{stage}.yml')) as f:
            opt = yaml.safe_load(f)
        assert opt['scale'] == 2 and opt['network_g']['scale'] == 2
        assert opt['sdakd']['teacher_g']['network']['scale'] == 2
        assert opt['sdakd']['teacher_g']['path'].endswith('RealESRGAN_x2plus.pth')
        assert opt['name'] == f'sdakd_realesrgan_x2_w0.5_stage{stage}'
        if stage == 3:
            assert opt['path']['pretrain_network_d_teacher'].endswith('RealESRGAN_x2plus_netD.pth')
            assert 'sdakd_realesrgan_x2_w0.5_stage2' in opt['path']['pretrain_network_g']


def test_three_x2_stages_run_and_hand_off(run_train):
    x2_validation_pairs()
    torch.manual_seed(0)
    teacher = RRDBNet(**{k: v for k, v in TEACHER_G.items() if k != 'type'}, scale=2)
    torch.save({'params_ema': teacher.state_dict()}, 'experiments/pretrained_models/RealESRGAN_x2plus.pth')
    torch.save({'params': UNetDiscriminatorSN(3, num_feat=8).state_dict()},
               'experiments/pretrained_models/RealESRGAN_x2plus_netD.pth')
    for stage in (1, 2, 3):
        extra = {'sdakd.init_student_from_teacher': True, 'path.pretrain_network_g': None} if stage == 1 else {}
        if stage == 2:
            extra['sdakd.taps'] = list(TAPS)
        exp = run_train(x2_options(stage, **extra))
        assert osp.isfile(osp.join(exp, 'models', 'net_g_latest.pth')), stage
    log = open(osp.join(exp, sorted(f for f in os.listdir(exp) if f.startswith('train_'))[-1])).read()
    assert 'psnr_teacher' in log and 'Feature taps' in log
    student = RRDBNet(**{k: v for k, v in STUDENT_G.items() if k != 'type'}, scale=2)
    student.load_state_dict(torch.load(osp.join(exp, 'models', 'net_g_latest.pth'))['params_ema'], strict=True)
    assert student(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)


def test_x2_student_exports_to_onnx_with_parity(tmp_path):
    import importlib.util

    import pytest
    if importlib.util.find_spec('onnxruntime') is None:
        pytest.skip('onnxruntime not installed')
    from sdakd_basicsr.deploy.onnx_export import check_parity, default_image, export_onnx
    torch.manual_seed(0)
    net = RRDBNet(**{k: v for k, v in STUDENT_G.items() if k != 'type'}, scale=2).eval()
    export_onnx(net, str(tmp_path / 'x2.onnx'))
    results = check_parity(net, str(tmp_path / 'x2.onnx'), default_image()[:, :, :40, :40])
    assert len(results) == 2 and min(db for _, db in results) > 50, results
