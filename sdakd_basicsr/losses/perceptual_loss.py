"""The perceptual loss and where its VGG weights come from.

``build_vgg(vgg_type, source)`` builds a torchvision VGG with weights from ``source``: ``None`` searches
torchvision's file for that VGG type (e.g. ``vgg19-dcbb9e9d.pth``) in ``experiments/pretrained_models/`` and
the torch hub cache, then tries the download, and otherwise fails naming the file and where to put it; a path
uses that file; ``'random'`` builds untrained weights under a fixed seed (tests only). basicsr's own
``PerceptualLoss`` goes through the same search (compat fix 6); ``VGGPerceptualLoss`` takes ``vgg_weights``.
"""
from collections import OrderedDict
from os import path as osp
from typing import Optional

import torch
from torch import nn
from torchvision.models import vgg as tv_vgg

from basicsr.archs.vgg_arch import NAMES, VGGFeatureExtractor, insert_bn
from basicsr.losses.basic_loss import PerceptualLoss
from basicsr.utils.registry import LOSS_REGISTRY

VGG_WEIGHTS_DIR = osp.join('experiments', 'pretrained_models')


def _weight_enum(vgg_type: str):
    return getattr(tv_vgg, vgg_type.upper() + '_Weights').IMAGENET1K_V1  # vgg19_bn -> VGG19_BN_Weights


def vgg_weights_filename(vgg_type: str) -> str:
    """The file name torchvision downloads for ``vgg_type`` (e.g. ``vgg19-dcbb9e9d.pth``)."""
    return osp.basename(_weight_enum(vgg_type).url)


def _materialized(factory, state_dict):
    """Build VGG on the meta device and materialise what is needed: building the 100M-parameter classifier
    just to throw it away (only ``features`` is used) costs seconds per loss."""
    with torch.device('meta'):
        net = factory(weights=None)
    if state_dict is not None:
        net.load_state_dict(state_dict, assign=True)
        return net
    net.features.to_empty(device='cpu')
    for m in net.features.modules():  # torchvision's VGG initialisation, for the features only
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()
    return net


def build_vgg(vgg_type: str, source: Optional[str] = None) -> nn.Module:
    """A torchvision VGG with weights from ``source`` (see the module docstring)."""
    factory = getattr(tv_vgg, vgg_type)
    if source == 'random':
        # A fixed seed: every DDP rank (seeded with manual_seed + rank by basicsr) must build the same loss
        # network, or the ranks optimise different objectives.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return _materialized(factory, None)
    filename = vgg_weights_filename(vgg_type)
    if source is not None:
        if not osp.isfile(source):
            raise FileNotFoundError(f'vgg_weights: {source} does not exist (expected the torchvision file '
                                    f'{filename} for {vgg_type})')
        candidates = [source]
    else:
        candidates = [osp.join(VGG_WEIGHTS_DIR, filename), osp.join(torch.hub.get_dir(), 'checkpoints', filename)]
    for candidate in candidates:
        if osp.isfile(candidate):
            return _materialized(factory, torch.load(candidate, map_location='cpu'))
    weights = _weight_enum(vgg_type)
    try:
        return factory(weights=weights)
    except Exception as err:  # offline: URLError; a proxy: HTTPError; a truncated download: RuntimeError
        raise FileNotFoundError(
            f'The perceptual loss needs the ImageNet weights of {vgg_type}, file {filename}, which is not on '
            f'disk and could not be downloaded ({type(err).__name__}: {err}). Download {weights.url} and put '
            f'it at {osp.abspath(candidates[0])} (or {candidates[1]}), or point the loss option '
            f'`vgg_weights` (type VGGPerceptualLoss) at the file.') from err


class VGGFeatures(VGGFeatureExtractor):
    """basicsr's VGG feature extractor (same layer names, normalisation and forward) built from ``build_vgg``
    with an explicit weight ``source`` instead of basicsr's fixed file."""

    def __init__(self, layer_name_list, vgg_type: str = 'vgg19', use_input_norm: bool = True,
                 range_norm: bool = False, requires_grad: bool = False, remove_pooling: bool = False,
                 pooling_stride: int = 2, source: Optional[str] = None) -> None:
        nn.Module.__init__(self)
        self.layer_name_list, self.use_input_norm, self.range_norm = layer_name_list, use_input_norm, range_norm
        self.names = NAMES[vgg_type.replace('_bn', '')]
        if 'bn' in vgg_type:
            self.names = insert_bn(self.names)
        last = max(self.names.index(name) for name in layer_name_list)  # layers past the last tap are not kept
        layers = OrderedDict()
        for name, layer in zip(self.names, build_vgg(vgg_type, source).features[:last + 1]):
            if 'pool' in name:
                if remove_pooling:
                    continue
                layer = nn.MaxPool2d(kernel_size=2, stride=pooling_stride)
            layers[name] = layer
        self.vgg_net = nn.Sequential(layers)
        self.vgg_net.train(requires_grad)
        for p in self.parameters():
            p.requires_grad = requires_grad
        if use_input_norm:  # ImageNet statistics, for inputs in [0, 1]
            self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))


@LOSS_REGISTRY.register()
class VGGPerceptualLoss(PerceptualLoss):
    """basicsr's ``PerceptualLoss`` (same options and forward) with one more option, ``vgg_weights``:
    ``~`` (default: the search of ``build_vgg``), a ``.pth`` path, or ``random`` (tests only)."""

    def __init__(self, layer_weights: dict, vgg_type: str = 'vgg19', use_input_norm: bool = True,
                 range_norm: bool = False, perceptual_weight: float = 1.0, style_weight: float = 0.,
                 criterion: str = 'l1', vgg_weights: Optional[str] = None) -> None:
        nn.Module.__init__(self)
        self.perceptual_weight, self.style_weight, self.layer_weights = perceptual_weight, style_weight, layer_weights
        self.vgg = VGGFeatures(list(layer_weights), vgg_type, use_input_norm, range_norm, source=vgg_weights)
        self.criterion_type = criterion
        criteria = {'l1': nn.L1Loss, 'l2': nn.MSELoss, 'fro': None}
        if criterion not in criteria:
            raise NotImplementedError(f'{criterion} criterion has not been supported.')
        self.criterion = criteria[criterion]() if criteria[criterion] else None
