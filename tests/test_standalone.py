"""A trained student works where BasicSR and Real-ESRGAN users run models, without this plugin: basicsr and
realesrgan import in a fresh interpreter (the torchvision alias installed with the package), and BasicSR's own
``python -m basicsr.test`` tests a student checkpoint in a subprocess that never imports sdakd_basicsr."""
import glob
import importlib.util
import os
import subprocess
import sys
import sysconfig
from os import path as osp

import pytest
import torch
import yaml

import sdakd_torchvision_alias as alias

from tests.helpers import REPO, STUDENT_G, build, write_images

CHECK = "import sys; import basicsr; print('plugin' if 'sdakd_basicsr' in sys.modules else 'standalone')"


def fresh(code, *args, cwd=None, env=None):
    return subprocess.run([sys.executable, *args, '-c', code], capture_output=True, text=True, cwd=cwd, env=env)


def test_the_pth_file_is_what_makes_basicsr_importable(tmp_path):
    """Hermetic: without site processing basicsr fails at import; adding a site dir with our .pth fixes it."""
    purelib = sysconfig.get_paths()['purelib']
    base = f'import sys; sys.path += [{purelib!r}, {REPO!r}]; '
    bare = fresh(base + CHECK, '-S')
    assert bare.returncode != 0 and 'functional_tensor' in bare.stderr
    alias.write_pth(str(tmp_path))
    fixed = fresh(base + f'import site; site.addsitedir({str(tmp_path)!r}); ' + CHECK, '-S')
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == 'standalone'


def test_the_alias_defers_to_a_torchvision_that_still_has_the_module():
    code = ('import sys, types; import torchvision.transforms as t; '
            "own = types.ModuleType('torchvision.transforms.functional_tensor'); "
            "sys.modules['torchvision.transforms.functional_tensor'] = own; "
            'import torchvision.transforms.functional_tensor as m; print(m is own)')
    assert fresh(code).stdout.strip() == 'True'


def test_basicsr_and_realesrgan_import_in_a_fresh_interpreter():
    if not osp.isfile(alias.pth_path()):
        pytest.fail(f'{alias.pth_path()} is missing: run `make install` or `python -m sdakd_torchvision_alias '
                    f'--install`')
    result = fresh(CHECK)
    assert result.returncode == 0 and result.stdout.strip() == 'standalone', result.stderr
    if importlib.util.find_spec('realesrgan') is None:
        pytest.skip('realesrgan is not installed (extra `realesrgan`, part of `make install`)')
    result = fresh("import sys, realesrgan; assert 'sdakd_basicsr' not in sys.modules; print(realesrgan.RealESRGANer)")
    assert result.returncode == 0, result.stderr


COMPACT_G = dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=3, upscale=4,
                 act_type='prelu')


def build_any(spec):
    from basicsr.archs.srvgg_arch import SRVGGNetCompact
    if spec['type'] == 'SRVGGNetCompact':
        return SRVGGNetCompact(**{k: v for k, v in spec.items() if k != 'type'})
    return build(spec)


@pytest.mark.parametrize('spec', [STUDENT_G, COMPACT_G], ids=['rrdbnet', 'srvggnetcompact'])
def test_basicsr_test_entry_runs_a_student_without_the_plugin(tmp_path, spec):
    torch.manual_seed(0)
    student, ema = build_any(spec), build_any(spec)
    os.makedirs(tmp_path / 'experiments' / 'student' / 'models')
    ckpt = tmp_path / 'experiments' / 'student' / 'models' / 'net_g_latest.pth'
    torch.save({'params': student.state_dict(), 'params_ema': ema.state_dict()}, ckpt)  # SDAKD's saved format
    write_images(str(tmp_path / 'val' / 'gt'), 2, 32)
    os.makedirs(tmp_path / 'val' / 'lq')
    import cv2
    for name in os.listdir(tmp_path / 'val' / 'gt'):
        img = cv2.imread(str(tmp_path / 'val' / 'gt' / name))
        cv2.imwrite(str(tmp_path / 'val' / 'lq' / name), cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA))
    with open(osp.join(REPO, 'options', 'test', 'test_sdakd_student_x4_w0.5.yml')) as f:
        opt = yaml.safe_load(f)
    opt['num_gpu'] = 0
    opt['network_g'] = dict(spec)
    opt['path']['pretrain_network_g'] = str(ckpt)
    opt['datasets']['test_1'].update(dataroot_gt='val/gt', dataroot_lq='val/lq', filename_tmpl='{}')
    with open(tmp_path / 'test.yml', 'w') as f:
        yaml.safe_dump(opt, f)
    run = subprocess.run([sys.executable, '-m', 'basicsr.test', '-opt', 'test.yml'], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    # BasicSR's own entry takes the folder above its installed package as the root of results/
    import shutil

    import basicsr
    results = osp.join(osp.dirname(osp.dirname(osp.abspath(basicsr.__file__))), 'results', opt['name'])
    try:
        log = open(glob.glob(osp.join(results, 'test_*.log'))[0]).read()
        assert 'params_ema' in log and '# psnr' in log
        assert len(glob.glob(osp.join(results, 'visualization', '*', '*.png'))) == 2
    finally:
        shutil.rmtree(results, ignore_errors=True)


def test_realesrganer_runs_a_compact_student_without_the_plugin(tmp_path):
    """Real-ESRGAN's own inference with its own SRVGGNetCompact class reads an SDAKD compact checkpoint."""
    if importlib.util.find_spec('realesrgan') is None:
        pytest.skip('realesrgan is not installed (extra `realesrgan`, part of `make install`)')
    torch.manual_seed(0)
    ckpt = tmp_path / 'net_g_latest.pth'
    torch.save({'params': build_any(COMPACT_G).state_dict(), 'params_ema': build_any(COMPACT_G).state_dict()}, ckpt)
    code = ('import sys, numpy as np, torch; from realesrgan import RealESRGANer; '
            'from realesrgan.archs.srvgg_arch import SRVGGNetCompact; '
            "net = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=3, upscale=4, act_type='prelu'); "
            f"up = RealESRGANer(scale=4, model_path={str(ckpt)!r}, model=net, tile=0, pre_pad=0, half=False, "
            "device=torch.device('cpu')); out, _ = up.enhance(np.full((10, 12, 3), 100, np.uint8), outscale=4); "
            "assert 'sdakd_basicsr' not in sys.modules; print(out.shape)")
    result = fresh(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith('(40, 48, 3)')
