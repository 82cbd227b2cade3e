"""Students of another architecture or depth than the teacher: SRVGGNetCompact (x4 and x2) and shallower
RRDBNets through the shipped compact option files; taps mapped by relative depth, adapters across channel
counts and spatial sizes, the capacity-matched D_S, and one more BasicSR generator (EDSR) that needs nothing
but its family entry."""
import glob
import os
from os import path as osp

import numpy as np
import pytest
import torch
import yaml

from basicsr.archs.rrdbnet_arch import RRDBNet
from basicsr.archs.srvgg_arch import SRVGGNetCompact

from sdakd_basicsr.archs import generator_call
from sdakd_basicsr.archs.adapter_arch import FeatureAdapters
from sdakd_basicsr.archs.generator_call import FAMILIES, GeneratorFamily, spec_from_state, student_taps_for
from sdakd_basicsr.distill.capacity import matched_discriminator_width

from tests.helpers import REPO, TAPS, TEACHER_G, build, shrink

COMPACT_G = dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=3, upscale=4,
                 act_type='prelu')
X4PLUS = dict(generator_call.REALESRGAN_X4PLUS)
X4PLUS_TAPS = ['body.5', 'body.11', 'body.17', 'body.22', 'conv_body']


def compact(spec=None, **kw):
    spec = dict(spec or COMPACT_G, **kw)
    return SRVGGNetCompact(**{k: v for k, v in spec.items() if k != 'type'})


# ------------------------------------------------------------------ the mapping and the rules, by themselves
def test_taps_map_by_relative_depth_to_every_student_family():
    # same family and depth: the teacher's names (today's behaviour)
    assert student_taps_for(X4PLUS, X4PLUS_TAPS, dict(X4PLUS, num_feat=16, num_grow_ch=8)) == X4PLUS_TAPS
    # 6-block RRDBNet: blocks at the same relative depth; conv_body stays conv_body
    assert student_taps_for(X4PLUS, X4PLUS_TAPS, dict(X4PLUS, num_block=6)) == \
        ['body.1', 'body.2', 'body.4', 'body.5', 'conv_body']
    # SRVGGNetCompact 64x16: activations at a quarter, half, ... ; the last activation is the trunk's end
    assert student_taps_for(X4PLUS, X4PLUS_TAPS, {'type': 'SRVGGNetCompact', 'num_conv': 16}) == \
        ['body.7', 'body.15', 'body.25', 'body.31', 'body.33']
    assert student_taps_for(X4PLUS, ['conv_body'], {'type': 'SRVGGNetCompact', 'num_conv': 32}) == ['body.65']
    # a teacher tap with no depth (inside a block) cannot be placed in a student of another shape
    with pytest.raises(ValueError, match=r"body.3.rdb1.*sdakd.student_taps"):
        student_taps_for(X4PLUS, ['body.3.rdb1'], {'type': 'SRVGGNetCompact'})
    # families without depth candidates keep the names (checked later against the student's modules)
    assert student_taps_for(X4PLUS, ['conv_body'], {'type': 'EDSR'}) == ['conv_body']


def test_capacity_matched_discriminator_width_follows_parameters():
    teacher = build(X4PLUS)
    # width-r RRDBNets get exactly r x 64 (the paper's D_S); other students by sqrt(P_S / P_T)
    assert matched_discriminator_width(build(dict(X4PLUS, num_feat=32, num_grow_ch=16)), teacher) == 32
    assert matched_discriminator_width(build(dict(X4PLUS, num_feat=16, num_grow_ch=8)), teacher) == 16
    assert matched_discriminator_width(compact(num_feat=64, num_conv=32), teacher) == 16
    assert matched_discriminator_width(compact(num_feat=32, num_conv=16), teacher) == 8
    with open(osp.join(REPO, 'options', 'sdakd_realesrgan_compact_stage3.yml')) as f:
        opt = yaml.safe_load(f)
    assert opt['network_d']['num_feat'] == matched_discriminator_width(compact(opt['network_g']), teacher)


def test_spatial_adapter_unshuffles_a_larger_student_map():
    adapters = FeatureAdapters([(4, 8), (4, 8, 2)], kind='mlp')
    out = adapters([torch.rand(1, 4, 6, 6), torch.rand(1, 4, 12, 12)])
    assert [tuple(o.shape) for o in out] == [(1, 8, 6, 6), (1, 8, 6, 6)]
    assert adapters.adapters[1][0].downscale_factor == 2 and adapters.adapters[1][1][0].in_channels == 16
    with pytest.raises(ValueError, match='not \\(student, teacher'):
        FeatureAdapters([(4, 8, 0)])


def test_architecture_is_read_back_from_the_weights():
    net = compact(num_feat=8, num_conv=5, upscale=2)
    spec = spec_from_state(net.state_dict())
    assert spec == dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=5, upscale=2,
                        act_type='prelu')
    rrdb = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=3, num_grow_ch=4, scale=2)
    assert spec_from_state(rrdb.state_dict())['num_block'] == 3
    with pytest.raises(ValueError, match='act_type'):
        spec_from_state(compact(act_type='relu').state_dict(), 'x.pth')
    with pytest.raises(ValueError, match='x.pth: the weights are not those of a RRDBNet or SRVGGNetCompact'):
        spec_from_state({'conv.weight': torch.zeros(1, 1, 3, 3)}, 'x.pth')


# ------------------------------------------------------------------ the shipped compact files, end to end
def compact_options(stage: int, scale: int = 4, **extra) -> dict:
    prefix = 'sdakd_realesrgan_compact_stage' if scale == 4 else 'sdakd_realesrgan_x2_compact_stage'
    with open(osp.join(REPO, 'options', f'{prefix}{stage}.yml')) as f:
        opt = shrink(yaml.safe_load(f), val=True, **extra)
    opt['network_g'] = dict(COMPACT_G, upscale=scale)
    if scale == 2:
        opt['sdakd']['teacher_g']['network']['scale'] = 2
        opt['datasets']['val']['dataroot_lq'] = 'datasets/val/lq_x2'
    return opt


def write_teacher_files(scale: int) -> None:
    from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
    torch.manual_seed(0)
    suffix = 'x4plus' if scale == 4 else 'x2plus'
    teacher = RRDBNet(**{k: v for k, v in TEACHER_G.items() if k != 'type'}, scale=scale)
    torch.save({'params_ema': teacher.state_dict()}, f'experiments/pretrained_models/RealESRGAN_{suffix}.pth')
    torch.save({'params': UNetDiscriminatorSN(3, num_feat=8).state_dict()},
               f'experiments/pretrained_models/RealESRGAN_{suffix}_netD.pth')


@pytest.mark.parametrize('scale', [4, 2])
def test_compact_student_runs_three_stages_and_loads_without_the_plugin(scale, run_train):
    if scale == 2:
        from tests.test_x2 import x2_validation_pairs
        x2_validation_pairs()
    write_teacher_files(scale)
    for stage in (1, 2, 3):  # stage 1 from scratch here (the shipped x4 file starts from realesr-general-x4v3)
        exp = run_train(compact_options(stage, scale, **({'path.pretrain_network_g': None} if stage == 1 else {})))
        assert osp.isfile(osp.join(exp, 'models', 'net_g_latest.pth')), stage
    log = open(sorted(glob.glob(osp.join(exp, 'train_*.log')))[-1]).read()
    # tiny teacher (2 blocks): body.0, body.1, conv_body at depths 1/3, 2/3, 1 -> the compact student's activations
    taps = 'body.1->body.0 (4, 8{s}), body.5->body.1 (4, 8{s}), body.7->conv_body (4, 8{s})'
    assert taps.format(s='' if scale == 4 else ', 2') in log
    assert 'psnr_teacher' in log
    state = torch.load(osp.join(exp, 'models', 'net_g_latest.pth'))['params_ema']
    net = compact(upscale=scale)
    net.load_state_dict(state, strict=True)  # a plain SRVGGNetCompact
    adapters = torch.load(osp.join(exp, 'models', 'net_adapters_latest.pth'))['params']
    in_ch = adapters['adapters.0.0.weight' if scale == 4 else 'adapters.0.1.0.weight'].shape[1]
    assert in_ch == (4 if scale == 4 else 16)  # x2: the student map is pixel-unshuffled by 2 before the MLP


def test_compact_stage1_starts_from_the_official_compact_model_and_names_its_download(workdir):
    from sdakd_basicsr.distill.preflight import check_options
    opt = compact_options(1, 4)
    assert opt['path']['pretrain_network_g'] == 'experiments/pretrained_models/realesr-general-x4v3.pth'
    assert opt['path']['param_key_g'] == ['params_ema', 'params']
    opt['network_g'] = dict(COMPACT_G, num_feat=64, num_conv=32)
    with pytest.raises(FileNotFoundError, match=r'path.pretrain_network_g.*releases/download/v0.2.5.0/'
                                                r'realesr-general-x4v3.pth'):
        check_options(opt, 'opt.yml', os.getcwd())
    assert compact_options(1, 2)['path']['pretrain_network_g'] is None  # no official x2 compact model


def test_compact_student_matches_realesrganer_byte_for_byte(workdir, tmp_path):
    pytest.importorskip('realesrgan')
    import cv2
    from realesrgan import RealESRGANer
    from realesrgan.archs.srvgg_arch import SRVGGNetCompact as RealesrganCompact

    from sdakd_basicsr.deploy.inference import load_upscaler, upscale
    torch.manual_seed(0)
    net = compact(num_feat=8, num_conv=4)
    torch.save({'params_ema': net.state_dict()}, tmp_path / 'student.pth')
    img = cv2.imread('datasets/gt/img00.png', cv2.IMREAD_UNCHANGED)[:40, :36]
    ours, scale, spec = load_upscaler(str(tmp_path / 'student.pth'))
    assert spec['type'] == 'SRVGGNetCompact' and scale == 4
    mine, _ = upscale(ours, scale, img, tile=16, tile_pad=4)
    theirs_net = RealesrganCompact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=4, upscale=4, act_type='prelu')
    upsampler = RealESRGANer(scale=4, model_path=str(tmp_path / 'student.pth'), model=theirs_net, tile=16,
                             tile_pad=4, pre_pad=0, half=False, device=torch.device('cpu'))
    theirs, _ = upsampler.enhance(img, outscale=4)
    assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)


def test_another_basicsr_generator_needs_only_its_family_entry(monkeypatch, run_train):
    """EDSR as a student of the RRDBNet teacher: one GeneratorFamily entry (its tap candidates and scale key)."""
    def edsr_depths(spec):
        n = int(spec.get('num_block', 16))
        return [(f'body.{i}', (i + 1) / (n + 1)) for i in range(n)] + [('conv_after_body', 1.0)]

    monkeypatch.setitem(FAMILIES, 'EDSR', GeneratorFamily('EDSR', tap_depths=edsr_depths, scale_key='upscale',
                                                          default_taps=lambda spec: ['conv_after_body']))
    write_teacher_files(4)
    edsr = dict(type='EDSR', num_in_ch=3, num_out_ch=3, num_feat=4, num_block=3, upscale=4)
    opt = compact_options(2, 4)
    opt['network_g'] = edsr
    opt['path']['pretrain_network_g'] = None
    exp = run_train(opt)
    log = open(sorted(glob.glob(osp.join(exp, 'train_*.log')))[-1]).read()
    assert 'body.0->body.0 (4, 8), body.2->body.1 (4, 8), conv_after_body->conv_body (4, 8)' in log
    assert list(TAPS) == opt['sdakd']['taps']
    from basicsr.archs.edsr_arch import EDSR
    EDSR(**{k: v for k, v in edsr.items() if k != 'type'}).load_state_dict(
        torch.load(osp.join(exp, 'models', 'net_g_latest.pth'))['params_ema'], strict=True)


def test_channel_selection_refuses_a_student_of_another_shape(workdir):
    from sdakd_basicsr.distill.options import parse_sdakd_options
    opt = compact_options(1, 4, **{'sdakd.init_student_from_teacher': True, 'path.pretrain_network_g': None})
    with pytest.raises(ValueError, match='SRVGGNetCompact.*path.pretrain_network_g'):
        parse_sdakd_options(opt)


# ------------------------------------------------------------------ deployment: ncnn, ONNX, release, upscale
def wheel_files_or_skip(model):
    from sdakd_basicsr.deploy import ncnn
    try:
        return ncnn.wheel_model_files(model)
    except FileNotFoundError as err:
        pytest.skip(str(err))


def test_wheel_compact_model_converts_and_writes_back_byte_for_byte(tmp_path):
    """realesr-animevideov3 (SRVGGNetCompact 64x16, x4) read from the wheel and written again: the same .bin bytes;
    its x2/x3 files are the same network followed by a resize, and are refused with that reason."""
    from sdakd_basicsr.deploy import ncnn
    param, bin_ = wheel_files_or_skip('realesr-animevideov3-x4')
    state, config = ncnn.convert(param, bin_)
    assert config == dict(type='SRVGGNetCompact', num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4,
                          act_type='prelu')
    compact(config).load_state_dict(state, strict=True)
    ncnn.write_srvgg_ncnn(state, config, str(tmp_path / 'a.param'), str(tmp_path / 'a.bin'), fp16=True)
    assert (tmp_path / 'a.bin').read_bytes() == open(bin_, 'rb').read()
    with pytest.raises(ncnn.NcnnFormatError, match='resize.*realesr-animevideov3-x4'):
        ncnn.convert(*wheel_files_or_skip('realesr-animevideov3-x2'))
    out = tmp_path / 'anime.pth'
    spec, params = ncnn.convert_to_checkpoint(param, bin_, str(out))
    assert spec['type'] == 'SRVGGNetCompact' and params == sum(p.numel() for p in compact(config).parameters())
    assert spec_from_state(torch.load(out)['params_ema']) == config


def engine_or_skip(param, bin_, scale):
    from sdakd_basicsr.deploy import ncnn
    missing = ncnn.missing_system_libraries()
    if missing:
        pytest.skip(f'the ncnn engine needs the system libraries of {missing} (scripts/install_system_libs.sh)')
    return ncnn.ncnn_engine(param, bin_, scale=scale, gpuid=-1)


def engine_vs_pytorch(net, engine, img, border=16):
    import cv2
    x = torch.from_numpy(cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        ref = net.eval()(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
    ref = cv2.cvtColor((ref * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
    out = engine.process_cv2(img)
    assert out.shape == ref.shape
    diff = out[border:-border, border:-border].astype(np.float64) - ref[border:-border, border:-border]
    mse = np.mean(diff**2)
    return float('inf') if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize('scale, fp16, act_type', [(4, False, 'prelu'), (2, True, 'prelu'), (3, False, 'leakyrelu')])
def test_compact_student_runs_in_the_ncnn_engine(tmp_path, scale, fp16, act_type):
    """The runtime's native model type at x2/x3/x4 (today's "no ncnn for x2" closed for compact students)."""
    import cv2

    from sdakd_basicsr.deploy import ncnn
    torch.manual_seed(0)
    net = compact(num_feat=8, num_conv=3, upscale=scale, act_type=act_type)
    param, bin_ = str(tmp_path / 's.param'), str(tmp_path / 's.bin')
    ncnn.write_ncnn(net.state_dict(), dict(COMPACT_G, num_conv=3, upscale=scale, act_type=act_type), param, bin_,
                    fp16=fp16)
    engine = engine_or_skip(param, bin_, scale)
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.uniform(0, 255, (6, 6, 3)).astype(np.float32), (48, 40), interpolation=cv2.INTER_CUBIC)
    assert engine_vs_pytorch(net, engine, img.clip(0, 255).astype(np.uint8)) >= (50 if fp16 else 60)


def test_wheel_compact_model_matches_the_engine_on_a_photo():
    """The converted realesr-animevideov3 in PyTorch vs the same files in the engine (which computes in reduced
    precision on this CPU: about 52 dB on a photo crop; RealESRGAN_x4plus itself gets about 41)."""
    import cv2
    from skimage import data

    from sdakd_basicsr.deploy import ncnn
    param, bin_ = wheel_files_or_skip('realesr-animevideov3-x4')
    state, config = ncnn.convert(param, bin_)
    net = compact(config)
    net.load_state_dict(state)
    img = cv2.cvtColor(data.astronaut()[100:164, 150:214], cv2.COLOR_RGB2BGR)
    assert engine_vs_pytorch(net, engine_or_skip(param, bin_, 4), np.ascontiguousarray(img)) >= 45


@pytest.mark.parametrize('scale', [4, 2])
def test_compact_student_exports_to_onnx_with_dynamic_sizes(tmp_path, scale):
    pytest.importorskip('onnxruntime')
    from sdakd_basicsr.deploy.onnx_export import check_parity, default_image, export_onnx
    torch.manual_seed(0)
    net = compact(num_feat=8, num_conv=3, upscale=scale).eval()
    export_onnx(net, str(tmp_path / 'c.onnx'))
    results = check_parity(net, str(tmp_path / 'c.onnx'), default_image()[:, :, :40, :36])
    assert len(results) == 2 and min(db for _, db in results) > 50, results


def test_release_of_a_compact_student_has_every_format(tmp_path, monkeypatch):
    import cv2

    from sdakd_basicsr.deploy import ncnn
    from sdakd_basicsr.tools.release import main as release
    from sdakd_basicsr.tools.upscale import main as upscale
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    spec = dict(COMPACT_G, upscale=2)
    os.makedirs('experiments/c/models')
    torch.save({'params_ema': compact(spec).state_dict()}, 'experiments/c/models/net_g_latest.pth')
    opt = {'name': 'c', 'scale': 2, 'network_g': spec, 'train': {'total_iter': 5}, 'sdakd': {'stage': 3}, 'path': {}}
    with open('c.yml', 'w') as f:
        yaml.safe_dump(opt, f)
    assert release(['-opt', 'c.yml', '--out', 'rel']) == 0
    assert {'rel.pth', 'rel.onnx', 'rel.param', 'rel.bin', 'rel-fp32.param', 'rel-fp32.bin'} <= set(os.listdir('rel'))
    state, config = ncnn.convert('rel/rel-fp32.param', 'rel/rel-fp32.bin')
    assert config == spec
    assert all(torch.equal(state[k], v) for k, v in torch.load('rel/rel.pth')['params_ema'].items())
    card = open('rel/model_card.md').read()
    assert 'SRVGGNetCompact' in card and 'x2' in card and 'model=SRVGGNetCompact(' in card
    os.makedirs('in')
    cv2.imwrite('in/a.png', np.full((12, 10, 3), 128, np.uint8))
    assert upscale(['-i', 'in', '-o', 'out', '--model', 'rel']) == 0
    assert cv2.imread('out/a_out.png').shape == (24, 20, 3)


# ------------------------------------------------------------------ the demo's compact student and the front
def test_demo_compact_files_hand_off_among_themselves_and_share_stage_0():
    from sdakd_basicsr.recipes import demo
    stages = demo.load_stages(demo.demo_student('compact').options_dir)
    assert stages[0]['name'] == 'sdakd_demo_stage0'  # the D_T warm-up does not depend on the student
    assert [stages[s]['name'] for s in (1, 2, 3)] == [f'sdakd_demo_compact_stage{s}' for s in (1, 2, 3)]
    assert all(stages[s]['network_g']['type'] == 'SRVGGNetCompact' for s in (1, 2, 3))
    assert stages[2]['path']['pretrain_network_g'] == 'experiments/sdakd_demo_compact_stage1/models/net_g_latest.pth'
    paths = stages[3]['path']
    assert paths['pretrain_network_d_teacher'] == 'experiments/sdakd_demo_stage0/models/net_d_teacher_latest.pth'
    assert paths['pretrain_network_adapters'] == 'experiments/sdakd_demo_compact_stage2/models/net_adapters_latest.pth'
    assert stages[1]['sdakd']['init_student_from_teacher'] is False
    assert demo.experiment(0, 'compact') == demo.experiment(0, 'rrdb') == osp.join('experiments', 'sdakd_demo_stage0')
    with pytest.raises(KeyError, match="unknown demo student 'tiny'"):
        demo.demo_student('tiny')


def test_default_demo_runs_stage_1_then_the_anchors_studys_texture_tail():
    """`make demo` = compact stage 1 + the tail that won the anchors study: the tail's file must be the study's
    texture arm (its texture terms, L1 weights, learning rate, start), so the two cannot drift apart."""
    from sdakd_basicsr.distill.option_file import read_option_file
    from sdakd_basicsr.recipes import anchors as an
    from sdakd_basicsr.recipes import demo
    recipe = demo.demo_student()
    assert [k for k, _ in recipe.steps] == ['stage1', 'texture'] and len(recipe.default_iters.split(',')) == 2
    assert len(recipe.seconds_per_iter) == len(recipe.steps)
    tail = read_option_file(demo.stage_file('texture'))
    stages = demo.load_stages(recipe.options_dir)
    assert demo.stage_file('stage1') == osp.join('options', 'demo', 'compact', 'sdakd_demo_stage1.yml')
    assert demo.student_spec() == stages[1]['network_g'] == tail['network_g']
    study = an.phase_options(stages, an.ARMS['texture'].phases[0], tail['name'], 0, an.START_G, an.D_TEACHER)
    assert tail['path']['pretrain_network_g'] == an.START_G == \
        osp.join(demo.experiment('stage1'), 'models', 'net_g_latest.pth')
    assert demo.experiment('texture') == osp.join('experiments', 'sdakd_demo_compact_texture')
    for key in ('hf_opt', 'patch_opt', 'pixel_opt', 'kd_opt', 'optim_g', 'ema_decay'):
        assert tail['train'][key] == study['train'][key], key
    assert {k: tail['train'][k] for k in an.TEXTURE} == an.TEXTURE
    assert tail['sdakd']['stage'] == 1 and not ({'network_d', 'network_d_teacher'} & set(tail))
    assert tail['datasets'] == stages[1]['datasets']  # the same data and teacher cache as stage 1
    # the other recipes keep SDAKD's stages 0-3
    assert [k for k, _ in demo.demo_student('compact_sdakd').steps] == ['stage0', 'stage1', 'stage2', 'stage3']
    assert demo.demo_student('compact_sdakd').prefix == recipe.prefix  # stage 1 is shared with the default


def test_front_arms_train_with_the_demo_recipe_and_their_own_start():
    from sdakd_basicsr.recipes import demo
    from sdakd_basicsr.recipes.front import ARMS, arm_options, arms_named, seconds_per_iteration
    stage1 = demo.load_stages()[1]
    by_slug = {a.slug: a for a in ARMS}
    rrdb = arm_options(stage1, by_slug['rrdbnet_1_4'], 3, 120, 'x')
    assert rrdb['sdakd']['init_student_from_teacher'] is True and rrdb['path']['pretrain_network_g'] is None
    assert rrdb['manual_seed'] == 3 and rrdb['train']['total_iter'] == 120 and rrdb['name'] == 'x'
    anime = arm_options(stage1, by_slug['srvggnetcompact_64x16_from_animevideov3'], 0, 5, 'y')
    assert anime['path']['pretrain_network_g'].endswith('realesr-animevideov3_ncnn.pth')
    assert anime['path']['param_key_g'] == 'params_ema'  # what the converter writes
    assert anime['sdakd']['init_student_from_teacher'] is False and anime['logger']['print_freq'] == 2
    assert anime['train']['kd_opt'] == stage1['train']['kd_opt']  # the demo's recipe, unchanged
    assert stage1['network_g']['type'] == 'RRDBNet'  # the source dict is not modified
    log = 'iter: 10, ... time (data): 0.250 (0.010)] ...\niter: 20, ... time (data): 0.210 (0.009)] l_g_kd: 1'
    assert seconds_per_iteration(log) == 0.21 and seconds_per_iteration('no timing') is None
    assert len({a.slug for a in ARMS}) == len(ARMS)
    with pytest.raises(KeyError, match='unknown'):
        arms_named(['rrdbnet_1_3'])


def test_latency_runners_time_pytorch_onnx_and_ncnn_or_say_why_not(tmp_path):
    from sdakd_basicsr.deploy.latency import ncnn_latency, onnx_runner, pytorch_runner
    net = compact(num_feat=4, num_conv=2).eval()
    x = torch.rand(1, 3, 16, 16)
    pytorch_runner(net, x)()
    run, why = onnx_runner(net, x, 1, str(tmp_path))
    assert (run is None) == bool(why)
    if run is not None:
        run()
    seconds, why = ncnn_latency(net, dict(COMPACT_G, num_conv=2), 16, 1, 1, str(tmp_path))
    assert (seconds is None and why) or (seconds > 0 and not why)
    seconds, why = ncnn_latency(net, {'type': 'EDSR'}, 16, 1, 1, str(tmp_path))
    assert seconds is None and 'supports x4 RRDBNets and SRVGGNetCompact' in why


@pytest.mark.parametrize('iters', ['30,1500,100,40', '1500,x', '1500,0'])
def test_demo_iterations_must_name_one_positive_count_per_run(iters, capsys):
    """A wrong --iters for the recipe stops the demo before any work, naming the recipe's runs."""
    from sdakd_basicsr.tools.demo import main
    with pytest.raises(SystemExit) as err:
        main(['--iters', iters])
    assert err.value.code == 2
    assert '--iters takes 2 positive whole numbers for --student compact: stage1,texture' in capsys.readouterr().err
