import os

import pytest
import yaml

from tests.helpers import load_script

make_width_options, main = (getattr(load_script('make_width_options'), n) for n in ('make_width_options', 'main'))


@pytest.mark.parametrize('width, feat, grow', [(0.25, 16, 8), (0.125, 8, 4)])
def test_width_files_scale_every_student_channel_and_rewire_the_hand_off(width, feat, grow):
    stages = make_width_options(width)
    tag = f'w{width:g}'
    for stage, opt in stages.items():
        assert opt['name'] == f'sdakd_realesrgan_x4_{tag}_stage{stage}'
        assert (opt['network_g']['num_feat'], opt['network_g']['num_grow_ch']) == (feat, grow)
        assert opt['network_g']['num_block'] == 23
        assert opt['sdakd']['teacher_g']['network']['num_feat'] == 64
    assert stages[2]['network_d']['num_feat'] == feat
    assert stages[3]['network_d_teacher']['num_feat'] == 64
    assert stages[2]['path']['pretrain_network_g'] == f'experiments/{stages[1]["name"]}/models/net_g_latest.pth'
    assert stages[3]['path']['pretrain_network_adapters'] == \
        f'experiments/{stages[2]["name"]}/models/net_adapters_latest.pth'
    assert stages[3]['path']['pretrain_network_d_teacher'].endswith('RealESRGAN_x4plus_netD.pth')


def test_width_script_writes_loadable_files(tmp_path):
    main(['--width', '0.25', '--out-dir', str(tmp_path)])
    files = sorted(os.listdir(tmp_path))
    assert files == [f'sdakd_realesrgan_w0.25_stage{s}.yml' for s in (1, 2, 3)]
    with open(tmp_path / files[2]) as f:
        assert yaml.safe_load(f)['network_d']['num_feat'] == 16


def test_width_that_does_not_divide_the_channels_is_rejected():
    with pytest.raises(ValueError, match='not a whole number'):
        make_width_options(0.3)
