"""Pure builders for the tests: tiny network specs, images and option dicts (no downloads). What needs a
prepared root (teacher files, data, the pipeline, a model) is a fixture in ``conftest.py``."""
import copy
import importlib.util
import os
import types
from os import path as osp

import cv2
import numpy as np
import torch
import yaml

from basicsr.archs.discriminator_arch import UNetDiscriminatorSN
from basicsr.archs.rrdbnet_arch import RRDBNet

REPO = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
TEACHER_G = dict(type='RRDBNet', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_grow_ch=4)
STUDENT_G = dict(TEACHER_G, num_feat=4, num_grow_ch=2)  # width 1/2
TAPS = ['body.0', 'body.1', 'conv_body']
TEACHER_G_FILE = 'experiments/pretrained_models/RealESRGAN_x4plus.pth'  # the official names, tiny contents
TEACHER_D_FILE = 'experiments/pretrained_models/RealESRGAN_x4plus_netD.pth'


def load_script(name: str) -> types.ModuleType:
    """A module of scripts/ (not a package) loaded from its file: no sys.path edits."""
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'scripts', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(spec: dict) -> torch.nn.Module:
    kwargs = {k: v for k, v in spec.items() if k != 'type'}
    return {'RRDBNet': RRDBNet, 'UNetDiscriminatorSN': UNetDiscriminatorSN}[spec['type']](**kwargs)


def write_images(folder, n: int, size: int, seed: int = 0):
    """Smooth random colour fields with edges: enough structure for L1/PSNR to mean something."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        low = rng.uniform(0, 255, (6, 6, 3)).astype(np.float32)
        img = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        img[size // 3:size // 2, :, :] = rng.uniform(0, 255, 3)
        cv2.imwrite(osp.join(folder, f'img{i:02d}.png'), np.clip(img, 0, 255).astype(np.uint8))


def tiny_options(stage: int, total_iter: int = 2, val: bool = False, **extra) -> dict:
    """The shipped stage file with tiny networks, tiny data and CPU settings; everything else unchanged."""
    with open(osp.join(REPO, 'options', f'sdakd_realesrgan_stage{stage}.yml')) as f:
        return shrink(yaml.safe_load(f), total_iter, val, **extra)


def shrink(opt: dict, total_iter: int = 2, val: bool = False, **extra) -> dict:
    """An option dict of the Real-ESRGAN family with tiny networks, tiny data and CPU settings."""
    opt['num_gpu'] = 0
    opt['gt_size'] = 64
    opt['queue_size'] = 4
    opt['network_g'].update(STUDENT_G)
    if 'network_d' in opt:
        opt['network_d']['num_feat'] = 4
    if 'network_d_teacher' in opt:
        opt['network_d_teacher']['num_feat'] = 8
    if 'teacher_g' in opt['sdakd']:
        opt['sdakd']['teacher_g']['network'] = dict(TEACHER_G)
    if 'taps' in opt['sdakd']:
        opt['sdakd']['taps'] = list(TAPS)
    train_set = opt['datasets']['train']
    train_set.update(dataroot_gt='datasets/gt', crop_pad_size=96, gt_size=64, num_worker_per_gpu=0,
                     batch_size_per_gpu=2, prefetch_mode=None, pin_memory=False)
    train_set.pop('meta_info', None)
    if val:
        opt['datasets']['val'] = dict(name='tinyval', type='PairedImageDataset', dataroot_gt='datasets/val/gt',
                                      dataroot_lq='datasets/val/lq', io_backend={'type': 'disk'})
        opt['val']['val_freq'] = total_iter
        opt['val']['save_img'] = False
    percep = opt['train']['perceptual_opt']
    percep['vgg_weights'] = 'random'  # tests never download VGG
    percep['layer_weights'] = {'conv1_2': 0.1, 'conv2_2': 0.1}
    opt['train']['total_iter'] = total_iter
    opt['train']['scheduler']['milestones'] = [total_iter * 100]
    opt['logger'].update(print_freq=1, save_checkpoint_freq=total_iter, use_tb_logger=False)
    for key, value in extra.items():  # dotted keys: 'sdakd.train_d_teacher'
        node = opt
        *parents, leaf = key.split('.')
        for p in parents:
            node = node.setdefault(p, {})
        if value is _DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return opt


def checkpointed_stage1(total_iter: int = 4, every: int = 2) -> dict:
    """Stage 1 from a random student, saving a checkpoint and training state every ``every`` iterations."""
    opt = tiny_options(1, total_iter=total_iter, **{'path.pretrain_network_g': None})
    opt['logger']['save_checkpoint_freq'] = every
    return opt


_DELETE = object()
DELETE = _DELETE


def write_options(opt: dict, path: str) -> str:
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def prepared(opt: dict) -> dict:
    """``opt`` completed as basicsr's parse_options would leave it (paths under the CWD), dirs created."""
    opt = copy.deepcopy(opt)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False, root_path=os.getcwd())
    for phase, dataset in opt['datasets'].items():
        dataset['phase'] = phase.split('_')[0]
        dataset['scale'] = opt['scale']
    exp = osp.join(os.getcwd(), 'experiments', opt['name'])
    opt['path'].update(experiments_root=exp, models=osp.join(exp, 'models'), log=exp,
                       training_states=osp.join(exp, 'training_states'), visualization=osp.join(exp, 'visualization'))
    os.makedirs(opt['path']['models'], exist_ok=True)
    os.makedirs(opt['path']['training_states'], exist_ok=True)
    return opt


def train_batch(opt: dict, seed: int = 0) -> dict:
    """A collated training batch from the configured dataset (real Real-ESRGAN kernels)."""
    import random

    from basicsr.data import build_dataset
    random.seed(seed)
    np.random.seed(seed)
    ds_opt = copy.deepcopy(opt['datasets']['train'])
    ds_opt.update(phase='train', scale=opt['scale'])
    ds = build_dataset(ds_opt)
    items = [ds[i] for i in range(ds_opt['batch_size_per_gpu'])]
    return {k: (torch.stack([it[k] for it in items]) if torch.is_tensor(items[0][k]) else [it[k] for it in items])
            for k in items[0]}
