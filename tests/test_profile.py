"""MAC counts against docs/method.md section 7, and the profile command."""
import pytest
import torch

from basicsr.archs.discriminator_arch import UNetDiscriminatorSN

from sdakd_basicsr.archs.gcfsr_arch import GCFSR, StyleGAN2Discriminator_no_std
from sdakd_basicsr.metrics.cost import count_macs


def meta_macs(build, *shape_args, **kwargs):
    with torch.device('meta'):
        net = build()
        return count_macs(net, *[torch.empty(*s) for s in shape_args], **kwargs)


@pytest.mark.parametrize('narrow, g_macs, d_macs', [(1, 120.8, 62.6), (0.5, 30.6, 15.9), (0.25, 7.9, 4.1)])
def test_gcfsr_macs_match_the_reference_table(narrow, g_macs, d_macs):
    with torch.device('meta'):
        g = GCFSR(512, narrow=narrow)
        g_count = count_macs(g, torch.empty(1, 3, 512, 512), torch.empty(1, 1), noise=g.make_noise(1, device='meta'))
        d_count = count_macs(StyleGAN2Discriminator_no_std(512, narrow=narrow), torch.empty(1, 3, 512, 512))
    assert g_count / 1e9 == pytest.approx(g_macs, abs=0.05)
    assert d_count / 1e9 == pytest.approx(d_macs, abs=0.05)


@pytest.mark.parametrize('feat, macs', [(64, 25.9), (32, 6.5), (16, 1.6)])
def test_unet_discriminator_macs_match_the_reference_table(feat, macs):
    count = meta_macs(lambda: UNetDiscriminatorSN(3, num_feat=feat), (1, 3, 256, 256))
    assert count / 1e9 == pytest.approx(macs, abs=0.05)


def test_profile_command_reports_costs_and_ratios(workdir, capsys):
    from sdakd_basicsr.tools.profile import main

    from tests.helpers import tiny_options, write_options
    path = write_options(tiny_options(3), 'options/tiny_stage3.yml')
    main(['-opt', path, '--size', '16', '--d-size', '32', '--repeats', '2', '--discriminators', '--device', 'cpu'])
    out = capsys.readouterr().out
    rows = {line.split('|')[1].strip(): line for line in out.splitlines() if line.startswith('| ')}
    assert {'teacher G', 'student G', 'teacher D', 'student D', 'teacher G / student G'} <= set(rows)
    # tiny teacher 8 channels, student 4: about 4x the MACs (the RGB convs do not halve)
    ratio = float(rows['teacher G / student G'].split('|')[5].strip().rstrip('x'))
    assert 2.5 < ratio < 4.5
    assert 'MiB' in rows['student G'] and 'ms' in rows['student G']
    assert 'CPU threads' in out and 'command: python -m sdakd_basicsr.tools.profile' in out
