"""GCFSR generator, blind variant and discriminator: official key layout, narrow widths, noise, conditions."""
import pytest
import torch

from sdakd_basicsr.archs.gcfsr_arch import GCFSR, GCFSR_blind, StyleGAN2Discriminator_no_std

# from the official architecture (GCFSR_ARCH.md): entries, parameters, and a sample of key shapes
OFFICIAL_512 = {
    'conv_body_first.0.weight': (64, 3, 3, 3), 'conv_body_down.4.1.weight': (512, 512, 3, 3),
    'conv_body_down.0.2.bias': (128, ), 'final_down2.1.weight': (256, 512, 3, 3),
    'final_linear.weight': (6144, 4096), 'condition_scale1.0.weight': (64, 1), 'condition_scale2.5.bias': (512, ),
    'condition_shift.0.0.weight': (64, 64, 3, 3), 'condition_shift.5.0.bias': (512, ),
    'style_conv1.modulated_conv.weight': (1, 512, 512, 3, 3), 'style_conv1.activate.bias': (512, ),
    'style_convs.4.modulated_conv.weight': (1, 256, 512, 3, 3),
    'style_convs.9.modulated_conv.weight': (1, 64, 64, 3, 3),
    'style_convs.3.modulated_conv.modulation.weight': (512, 512), 'to_rgbs.4.modulated_conv.weight': (1, 3, 64, 1, 1),
    'to_rgb1.bias': (1, 3, 1, 1), 'noises.noise0': (1, 1, 4, 4), 'noises.noise10': (1, 1, 128, 128),
}


def meta(cls, *args, **kwargs):
    with torch.device('meta'):
        return cls(*args, **kwargs)


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def test_generator_512_matches_the_official_layout():
    sd = meta(GCFSR, 512).state_dict()
    assert len(sd) == 146 and round(sum(v.numel() for k, v in sd.items() if 'noises' not in k) / 1e6, 3) == 62.353
    for key, shape in OFFICIAL_512.items():
        assert tuple(sd[key].shape) == shape, key


@pytest.mark.parametrize('cls, size, entries, mparams', [(GCFSR, 1024, 170, 66.669), (GCFSR_blind, 512, 146, 88.699),
                                                         (StyleGAN2Discriminator_no_std, 512, 43, 28.978),
                                                         (StyleGAN2Discriminator_no_std, 1024, 48, 29.008)])
def test_other_official_sizes(cls, size, entries, mparams):
    net = meta(cls, size)
    assert len(net.state_dict()) == entries and round(n_params(net) / 1e6, 3) == mparams


@pytest.mark.parametrize('narrow, g_m, d_m', [(0.5, 22.646, 7.246), (0.25, 9.192, 1.812)])
def test_narrow_students_have_the_reference_sizes(narrow, g_m, d_m):
    g = meta(GCFSR, 512, narrow=narrow)
    assert round(n_params(g) / 1e6, 3) == g_m
    assert tuple(g.state_dict()['final_linear.weight'].shape) == (6144, int(256 * narrow) * 16)  # fixed latent size
    assert round(n_params(meta(StyleGAN2Discriminator_no_std, 512, narrow=narrow)) / 1e6, 3) == d_m


@pytest.mark.parametrize('narrow', [1, 0.5, 0.25, 0.125])
def test_narrow_generator_and_discriminator_run_forward_and_backward(narrow):
    torch.manual_seed(0)
    g, d = GCFSR(32, narrow=narrow), StyleGAN2Discriminator_no_std(32, narrow=narrow)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out, latent = g(x, torch.tensor([[0.25], [1.0]]), return_latents=True)
    assert out.shape == (2, 3, 32, 32) and latent.shape == (2, g.num_latent, 512)
    logits = d(out)
    assert logits.shape == (2, 1)
    logits.mean().backward()
    assert all(p.grad is not None for p in g.parameters() if p.requires_grad)


def test_explicit_noise_makes_the_output_deterministic_and_random_noise_does_not():
    from basicsr.archs.stylegan2_arch import StyleConv
    torch.manual_seed(0)
    g = GCFSR(32).eval()
    with torch.no_grad():  # noise strengths start at 0: give the noise an effect, as a trained GCFSR has
        for m in g.modules():
            if isinstance(m, StyleConv):
                m.weight.fill_(0.5)
    x, cond = torch.rand(1, 3, 32, 32), torch.tensor([[0.5]])
    noise = g.make_noise()
    assert [n.shape[-1] for n in noise] == [16, 32, 32]
    with torch.no_grad():
        a, b = g(x, cond, noise=noise)[0], g(x, cond, noise=noise)[0]
        c = g(x, cond)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match='explicit noise list'):
        g(x, cond, randomize_noise=False)


def test_condition_changes_the_output():
    torch.manual_seed(0)
    g = GCFSR(32).eval()
    with torch.no_grad():  # make the condition matter at initialisation
        for m in list(g.condition_scale1) + list(g.condition_scale2):
            m.weight.normal_()
    x, noise = torch.rand(1, 3, 32, 32), g.make_noise()
    with torch.no_grad():
        quarter, full = g(x, torch.tensor([[0.25]]), noise=noise)[0], g(x, torch.tensor([[1.0]]), noise=noise)[0]
        assert not torch.allclose(quarter, full)


@pytest.mark.parametrize('wrapper', ['params_ema', None])
def test_checkpoints_in_the_official_wrappers_load_strictly(tmp_path, wrapper):
    """gcfsr-1024 stores {'params_ema': ...}; gcfsr_blind_512.pth a raw state dict."""
    from sdakd_basicsr.models.sdakd_model import SDAKDModel
    torch.manual_seed(0)
    src = GCFSR_blind(32) if wrapper is None else GCFSR(32)
    path = tmp_path / 'gcfsr.pth'
    torch.save(src.state_dict() if wrapper is None else {wrapper: src.state_dict()}, path)
    dst = type(src)(32)
    loader = SDAKDModel.__new__(SDAKDModel)  # only its loader is needed
    loader.load_network(dst, str(path), strict=True, param_key=wrapper, what='test')
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


def test_bad_out_size():
    with pytest.raises(ValueError, match='power of two'):
        GCFSR(48)
    with pytest.raises(ValueError, match='power of two'):
        StyleGAN2Discriminator_no_std(16)
    with pytest.raises(ValueError, match='takes 32x32 inputs'):
        GCFSR(32)(torch.rand(1, 3, 16, 16), torch.tensor([[1.0]]))
