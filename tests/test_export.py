"""ONNX export of a student: dynamic shapes and parity with PyTorch (needs onnxruntime)."""
import importlib.util

import pytest
import torch

from tests.helpers import STUDENT_G, build, write_options

pytestmark = pytest.mark.skipif(importlib.util.find_spec('onnxruntime') is None, reason='onnxruntime not installed')


def student_option_file(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / 'net_g_latest.pth'
    net = build(STUDENT_G)
    torch.save({'params': net.state_dict(), 'params_ema': net.state_dict()}, ckpt)
    opt = {'network_g': dict(STUDENT_G), 'path': {'pretrain_network_g': str(ckpt), 'param_key_g': 'params_ema'}}
    return write_options(opt, str(tmp_path / 'student.yml'))


def test_export_has_dynamic_shapes_and_matches_pytorch(tmp_path, capsys):
    from sdakd_basicsr.tools.export import main
    status = main(['-opt', student_option_file(tmp_path), '--out', str(tmp_path / 'student.onnx')])
    out = capsys.readouterr().out
    assert status == 0, out
    values = [float(line.split('=')[1].split('dB')[0]) for line in out.splitlines() if line.startswith('parity on')]
    assert len(values) == 2 and min(values) >= 50  # two input sizes through one exported graph
    import numpy as np
    import onnxruntime as ort
    session = ort.InferenceSession(str(tmp_path / 'student.onnx'), providers=['CPUExecutionProvider'])
    assert session.run(None, {'lr': np.random.rand(3, 3, 10, 14).astype(np.float32)})[0].shape == (3, 3, 40, 56)


def test_export_errors(tmp_path):
    from sdakd_basicsr.tools.export import main
    path = write_options({'network_g': dict(STUDENT_G), 'path': {}}, str(tmp_path / 'x.yml'))
    with pytest.raises(KeyError, match='no weights'):
        main(['-opt', path, '--out', str(tmp_path / 'x.onnx')])
    gcfsr = write_options({'network_g': {'type': 'GCFSR', 'out_size': 32}, 'path': {}}, str(tmp_path / 'g.yml'))
    with pytest.raises(ValueError, match='single-input'):
        main(['-opt', gcfsr, '--out', str(tmp_path / 'g.onnx')])
