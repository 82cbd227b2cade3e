"""Each basicsr 1.4.2 fix in sdakd_basicsr.compat, with a test that fails without it."""
import os
import sys
from os import path as osp

import pytest
import torch

from sdakd_basicsr import compat


def test_functional_tensor_alias_lets_basicsr_import():
    import torchvision.transforms._functional_tensor as new_module

    import basicsr.data.degradations as degradations
    assert sys.modules['torchvision.transforms.functional_tensor'] is new_module
    assert degradations.rgb_to_grayscale is new_module.rgb_to_grayscale


def test_basicsr_realesrgan_model_runs_its_synthesis_on_cpu(workdir):
    """basicsr's own RealESRGANModel (not ours): DiffJPEG/USMSharp/queue built on the model's device."""
    from basicsr.utils.registry import MODEL_REGISTRY

    from tests.helpers import prepared, tiny_options, train_batch
    opt = tiny_options(2, **{'path.pretrain_network_g': None})
    opt['queue_size'] = 2
    real = MODEL_REGISTRY.get('RealESRGANModel_basicsr')(prepared(opt))
    assert real.device.type == 'cpu'
    assert next(real.usm_sharpener.buffers()).device.type == 'cpu'
    real.feed_data(train_batch(opt))  # batch 2: also exercises the DiffJPEG layout fix
    assert real.lq.shape == (2, 3, 16, 16) and real.queue_lr.device.type == 'cpu'
    real.feed_data(train_batch(opt, seed=1))  # the pool is full now: dequeue path
    assert real.queue_ptr == 2


def test_diffjpeg_output_is_contiguous_for_filter2d():
    """DiffJPEG's decompressor ends in ``view(...).permute(0, 3, 1, 2)`` (channels-last strides), which
    filter2D's ``.view`` rejects for batch >= 2."""
    from basicsr.utils import DiffJPEG
    from basicsr.utils.img_process_util import filter2D
    x = torch.rand(2, 3, 30, 30)
    out = DiffJPEG(differentiable=False)(x, quality=x.new_tensor([50.0, 80.0]))
    assert out.is_contiguous()
    assert filter2D(out, torch.ones(2, 5, 5) / 25).shape == (2, 3, 30, 30)


def test_auto_resume_finds_state_under_the_root_and_loads_on_cpu(tmp_path, monkeypatch):
    import basicsr.train
    root = tmp_path / 'root'
    states = root / 'experiments' / 'exp' / 'training_states'
    states.mkdir(parents=True)
    for it in (2, 10):
        torch.save({'iter': it, 'epoch': 0, 'optimizers': [], 'schedulers': []}, states / f'{it}.state')
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the CWD is not the root: basicsr's version looks in the CWD
    opt = {'name': 'exp', 'auto_resume': True, 'root_path': str(root),
           'path': {'training_states': str(states), 'models': str(root / 'experiments/exp/models')}}
    state = basicsr.train.load_resume_state(opt)
    assert state['iter'] == 10
    assert opt['path']['resume_state'].endswith('10.state')


def test_auto_resume_skips_damaged_newest_states_and_names_them(tmp_path, capsys):
    """A state that does not load, or whose network checkpoint of the same iteration does not, is skipped with
    a warning naming the file; an explicit path.resume_state is never replaced; all damaged: one clear error."""
    import basicsr.train

    from sdakd_basicsr.checkpoints import CheckpointError
    exp = tmp_path / 'experiments' / 'exp'
    states, models = exp / 'training_states', exp / 'models'
    states.mkdir(parents=True)
    models.mkdir()
    for it in (2, 4, 6):
        torch.save({'iter': it, 'epoch': 0, 'optimizers': [], 'schedulers': []}, states / f'{it}.state')
        torch.save({'params': {'w': torch.zeros(1)}}, models / f'net_g_{it}.pth')
    (states / '6.state').write_bytes((states / '6.state').read_bytes()[:100])  # truncated by a crash
    (models / 'net_g_4.pth').write_bytes(b'')  # the state is intact, its generator is not
    opt = {'name': 'exp', 'auto_resume': True, 'root_path': str(tmp_path),
           'path': {'training_states': str(states), 'models': str(models)}}
    state = basicsr.train.load_resume_state(opt)
    assert state['iter'] == 2 and opt['path']['resume_state'].endswith('2.state')
    warned = capsys.readouterr().err  # at once, on the console: the run's log file does not exist yet
    assert '6.state' in warned and 'truncated' in warned and 'net_g_4.pth' in warned and 'empty' in warned
    assert 'SKIPPED the training state of iteration 6' in warned and 'resuming from iteration 2' in warned
    from sdakd_basicsr.models import resume
    logged = []
    resume.log_resume_notes(logged.append)  # what the model writes into the log file once it is open
    assert len(logged) == 3 and 'iteration 4' in logged[1] and not resume.RESUME_NOTES

    explicit = {'name': 'exp', 'auto_resume': False, 'path': {'resume_state': str(states / '6.state')}}
    with pytest.raises(CheckpointError, match=r'path.resume_state: .*6.state .*truncated'):
        basicsr.train.load_resume_state(explicit)
    torch.save({'params': {'w': torch.zeros(1)}}, states / '8.state')  # weights where a state belongs
    with pytest.raises(CheckpointError, match=r'8.state is not a training state'):
        basicsr.train.load_resume_state(dict(explicit, path={'resume_state': str(states / '8.state')}))
    (states / '2.state').write_bytes(b'junk')
    with pytest.raises(CheckpointError, match='no intact training state'):
        basicsr.train.load_resume_state(opt)


def test_local_rank_flag_is_normalised(monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    assert compat.normalize_launcher_argv(['-opt', 'x.yml', '--local-rank=3']) == ['-opt', 'x.yml', '--local_rank=3']
    assert compat.normalize_launcher_argv(['--local-rank', '1']) == ['--local_rank', '1']
    monkeypatch.setenv('LOCAL_RANK', '2')
    assert compat.normalize_launcher_argv(['-opt', 'x.yml']) == ['-opt', 'x.yml', '--local_rank', '2']


def _offline(monkeypatch, tmp_path):
    """No hub cache and no network, whatever machine runs the test."""
    from urllib.error import URLError

    import torch.hub
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))

    def refuse(*args, **kwargs):
        raise URLError('offline (test)')

    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', refuse)
    import torchvision.models._api as api
    if hasattr(api, 'load_state_dict_from_url'):
        monkeypatch.setattr(api, 'load_state_dict_from_url', refuse)


def test_missing_vgg_weights_error_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    from basicsr.losses.basic_loss import PerceptualLoss
    _offline(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        PerceptualLoss({'conv1_2': 1.0}, vgg_type='vgg19')
    msg = str(err.value)
    assert 'vgg19-dcbb9e9d.pth' in msg and osp.join('experiments', 'pretrained_models') in msg
    assert 'vgg_weights' in msg


def _tiny_vgg_file(path, vgg_type):
    """A loadable VGG state dict whose big classifier tensors are stride-0 views (a few bytes on disk)."""
    import torchvision.models.vgg as tv_vgg
    with torch.device('meta'):
        net = getattr(tv_vgg, vgg_type)(weights=None)
    torch.manual_seed(0)
    state = {k: (torch.randn(v.shape) if k.startswith('features') else torch.zeros(1).expand(v.shape))
             for k, v in net.state_dict().items()}
    torch.save(state, path)
    return state


def test_vgg_weights_from_a_local_file_per_vgg_type(tmp_path, monkeypatch):
    """basicsr loads its vgg19 file for every VGG type; we load the file that belongs to the type."""
    from basicsr.losses.basic_loss import PerceptualLoss

    from sdakd_basicsr.losses import VGGPerceptualLoss
    from sdakd_basicsr.losses.perceptual_loss import vgg_weights_filename
    _offline(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    os.makedirs('experiments/pretrained_models')
    state16 = _tiny_vgg_file(osp.join('experiments/pretrained_models', vgg_weights_filename('vgg16')), 'vgg16')
    _tiny_vgg_file('experiments/pretrained_models/vgg19-dcbb9e9d.pth', 'vgg19')
    loss = PerceptualLoss({'conv4_3': 1.0}, vgg_type='vgg16')  # GCFSR's perceptual layer
    assert torch.equal(loss.vgg.vgg_net.conv1_1.weight, state16['features.0.weight'])
    explicit = tmp_path / 'my_vgg16.pth'
    state = _tiny_vgg_file(explicit, 'vgg16')
    loss = VGGPerceptualLoss({'conv1_1': 1.0}, vgg_type='vgg16', vgg_weights=str(explicit))
    assert torch.equal(loss.vgg.vgg_net.conv1_1.weight, state['features.0.weight'])
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        VGGPerceptualLoss({'conv1_1': 1.0}, vgg_type='vgg16', vgg_weights='nope.pth')


def test_random_vgg_weights_are_explicit_and_differentiable():
    from sdakd_basicsr.losses import VGGPerceptualLoss
    loss = VGGPerceptualLoss({'conv1_2': 1.0, 'conv2_2': 1.0}, vgg_weights='random')
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    percep, _ = loss(x, torch.rand(1, 3, 32, 32))
    percep.backward()
    assert percep.item() > 0 and x.grad.abs().sum() > 0
    # the same network whatever the global RNG state (DDP ranks are seeded differently by basicsr),
    # and building it leaves the caller's RNG stream alone
    torch.manual_seed(123)
    other = VGGPerceptualLoss({'conv1_2': 1.0, 'conv2_2': 1.0}, vgg_weights='random')
    after = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(loss.vgg.vgg_net.conv1_1.weight, other.vgg.vgg_net.conv1_1.weight)
    assert torch.equal(torch.rand(1), after)


def test_stylegan2_blocks_run_without_compiled_ops():
    """basicsr's FusedLeakyReLU / EqualLinear need a compiled extension; the pure-PyTorch path is exact."""
    from basicsr.archs.stylegan2_arch import ConvLayer, EqualLinear
    from basicsr.ops.fused_act import FusedLeakyReLU
    act = FusedLeakyReLU(4)
    with torch.no_grad():
        act.bias.normal_()
    x = torch.randn(2, 4, 6, 6)
    expected = torch.nn.functional.leaky_relu(x + act.bias.view(1, -1, 1, 1), 0.2) * 2**0.5
    assert torch.allclose(act(x), expected)
    layer = ConvLayer(4, 8, 3, downsample=True)
    y = layer(x.requires_grad_())
    y.sum().backward()
    assert y.shape == (2, 8, 3, 3) and x.grad is not None
    assert EqualLinear(4, 2, activation='fused_lrelu')(torch.randn(3, 4)).shape == (3, 2)


def test_distributed_backend_follows_the_options_and_falls_back_to_gloo_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    compat.set_dist_backend(None)
    assert compat.pick_dist_backend() == 'gloo'
    compat.set_dist_backend('nccl')  # a GPU option file run on a CPU-only machine
    with pytest.warns(UserWarning, match='nccl needs CUDA'):
        assert compat.pick_dist_backend() == 'gloo'
    compat.set_dist_backend(None)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert compat.pick_dist_backend() == 'nccl' and compat.pick_dist_backend('gloo') == 'gloo'


def test_cpu_models_are_wrapped_without_cuda_device_ids(monkeypatch):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from basicsr.models.base_model import BaseModel
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', '29533')
    dist.init_process_group('gloo', rank=0, world_size=1)
    try:
        model = BaseModel.__new__(BaseModel)
        model.opt, model.device = {'dist': True, 'num_gpu': 0}, torch.device('cpu')
        wrapped = model.model_to_device(torch.nn.Linear(2, 2))
        assert isinstance(wrapped, DistributedDataParallel) and wrapped.device_ids is None
    finally:
        dist.destroy_process_group()
