"""LPIPS and FID for ``evaluate`` and ``compare``, computed only from weights that are on disk (they cannot be
downloaded
offline, and a metric from random weights would be meaningless).

* LPIPS (AlexNet, v0.1): the ``lpips`` package supplies the linear heads (bundled in its wheel); the AlexNet
  backbone is torchvision's ``alexnet-owt-7be5be79.pth``, loaded from a local file.
* FID: basicsr's FID-Inception (pool3, 2048-d, inputs resized to 299x299) from
  ``pt_inception-2015-12-05-6726825d.pth``; Frechet distance by ``basicsr.metrics.fid.calculate_fid``.

``find_weights`` looks in the documented places; ``LPIPSMetric`` / ``FIDMetric`` raise ``FileNotFoundError``
naming the file, the folder to put it in and its download URL; ``build_metric`` turns that into a note.
"""
import contextlib
import warnings
from os import path as osp
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from basicsr.archs import inception
from basicsr.archs.inception import InceptionV3
from basicsr.metrics.fid import calculate_fid

from .images import to_tensor

LPIPS_BACKBONE = 'alexnet-owt-7be5be79.pth'
LPIPS_BACKBONE_URL = 'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth'
FID_INCEPTION = 'pt_inception-2015-12-05-6726825d.pth'
FID_INCEPTION_URL = 'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/' + FID_INCEPTION
PRETRAINED_DIR = osp.join('experiments', 'pretrained_models')
# torchvision AlexNet ``features`` index -> LPIPS slice holding it (the ReLU taps end each slice)
_ALEXNET_SLICE = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}


def search_dirs() -> List[str]:
    """Where weights are looked for, in order: ``experiments/pretrained_models`` (CWD), the torch hub cache."""
    return [PRETRAINED_DIR, osp.join(torch.hub.get_dir(), 'checkpoints')]


def find_weights(file_name: str) -> Optional[str]:
    for folder in search_dirs():
        candidate = osp.join(folder, file_name)
        if osp.isfile(candidate):
            return candidate
    return None


def missing_message(what: str, file_name: str, url: str, flag: str) -> str:
    return (f'{what} needs {file_name}: put it in {search_dirs()[0]}/ (or {search_dirs()[1]}/) or pass {flag} FILE; '
            f'download it from {url}')


def _resolve(given: Optional[str], file_name: str, what: str, url: str, flag: str) -> str:
    if given:
        if not osp.isfile(given):
            raise FileNotFoundError(f'{flag} {given}: file not found. ' + missing_message(what, file_name, url, flag))
        return given
    found = find_weights(file_name)
    if found is None:
        raise FileNotFoundError(missing_message(what, file_name, url, flag))
    return found


class LPIPSMetric:
    """LPIPS (AlexNet, linear heads v0.1) between RGB images in [0, 1]; lower is closer."""
    name = 'LPIPS'

    def __init__(self, backbone_path: Optional[str] = None, device='cpu') -> None:
        try:
            import lpips  # lazy: optional (extra `eval`), +2 s import
        except ImportError as err:
            raise ImportError('LPIPS needs the lpips package (its linear heads): pip install lpips '
                              "(or pip install -e '.[eval]')") from err
        self.backbone_path = _resolve(backbone_path, LPIPS_BACKBONE, 'LPIPS', LPIPS_BACKBONE_URL, '--lpips-weights')
        # pnet_rand: build AlexNet without torchvision's download; its weights come from the local file below
        with warnings.catch_warnings():  # lpips still passes torchvision's deprecated ``pretrained=False``
            warnings.simplefilter('ignore', UserWarning)
            self.net = lpips.LPIPS(net='alex', version='0.1', pretrained=True, pnet_rand=True, verbose=False)
        state = torch.load(self.backbone_path, map_location='cpu')
        state = state.get('state_dict', state)
        mapped = {}
        for index, slice_no in _ALEXNET_SLICE.items():
            for kind in ('weight', 'bias'):
                key = f'features.{index}.{kind}'
                if key not in state:
                    raise KeyError(f'{self.backbone_path}: not a torchvision AlexNet checkpoint (no {key})')
                mapped[f'net.slice{slice_no}.{index}.{kind}'] = state[key]
        own = self.net.state_dict()
        for key, value in mapped.items():
            if own[key].shape != value.shape:
                raise ValueError(f'{self.backbone_path}: {key} has shape {tuple(value.shape)}, '
                                 f'AlexNet needs {tuple(own[key].shape)}')
        self.net.load_state_dict(mapped, strict=False)
        self.net = self.net.to(device).eval()
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, image: np.ndarray, reference: np.ndarray) -> float:
        """HxWx3 uint8 RGB images of the same size."""
        return float(self.net(to_tensor(image, self.device), to_tensor(reference, self.device), normalize=True).item())


@contextlib.contextmanager
def _basicsr_fid_weights(path: str):
    """basicsr's FID-Inception reads its weights from a fixed relative path (else it downloads): point it at
    ``path`` for the duration of the build."""
    saved = inception.LOCAL_FID_WEIGHTS
    inception.LOCAL_FID_WEIGHTS = path
    try:
        yield
    finally:
        inception.LOCAL_FID_WEIGHTS = saved


class FIDMetric:
    """FID between two sets of RGB images in [0, 1] (any sizes: the network resizes them to 299x299)."""
    name = 'FID'

    def __init__(self, inception_path: Optional[str] = None, device='cpu') -> None:
        self.inception_path = _resolve(inception_path, FID_INCEPTION, 'FID', FID_INCEPTION_URL, '--fid-inception')
        with _basicsr_fid_weights(self.inception_path), warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)  # basicsr passes torchvision's deprecated ``pretrained``
            self.net = InceptionV3([3], resize_input=True, normalize_input=True, use_fid_inception=True)
        self.net = self.net.to(device).eval()
        self.device = torch.device(device)

    @torch.no_grad()
    def features(self, images: Sequence[np.ndarray]) -> np.ndarray:
        rows = []
        for img in images:
            rows.append(self.net(to_tensor(img, self.device))[0].view(1, -1).cpu().numpy())
        return np.concatenate(rows, 0).astype(np.float64)

    @staticmethod
    def statistics(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return features.mean(0), np.cov(features, rowvar=False)

    @staticmethod
    def distance(stats: Tuple[np.ndarray, np.ndarray], reference: Tuple[np.ndarray, np.ndarray]) -> float:
        return float(calculate_fid(*stats, *reference))

    def __call__(self, images: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
        if len(images) < 2 or len(reference) < 2:
            raise ValueError(f'FID needs at least 2 images per set (got {len(images)} and {len(reference)})')
        return self.distance(self.statistics(self.features(images)), self.statistics(self.features(reference)))


def add_lpips(results: dict, outputs: dict, pairs: list, metric: LPIPSMetric, teacher: Optional[str]) -> None:
    """Mean LPIPS against GT and against the teacher's output, per generator."""
    for name in results:
        results[name]['lpips'] = float(np.mean([metric(outputs[name][n], gt) for n, _, gt in pairs]))
        results[name]['lpips_teacher'] = (
            float(np.mean([metric(outputs[name][n], outputs[teacher][n]) for n, _, _ in pairs]))
            if teacher else float('nan'))


def add_fid(results: dict, outputs: dict, pairs: list, metric: FIDMetric, log: Callable[[str], None]) -> bool:
    """FID of each generator's outputs against the GT images; False (with a note) when there are too few."""
    if len(pairs) < 2:
        log(f'FID not computed: it needs at least 2 images, the set has {len(pairs)}')
        return False
    reference = metric.statistics(metric.features([gt for _, _, gt in pairs]))
    for name in results:
        stats = metric.statistics(metric.features([outputs[name][n] for n, _, _ in pairs]))
        results[name]['fid'] = metric.distance(stats, reference)
    return True


def fid_protocol(count: int, reference: str) -> str:
    """The sentence the results table prints under FID."""
    caveat = (' With fewer than 2048 images the covariance is rank-deficient and FID is biased upwards: '
              'compare values only within one table.' if count < 2048 else '')
    return (f'FID protocol: {count} whole images per set, FID-Inception pool3 features (2048-d) after a bilinear '
            f'resize to 299x299, reference set: {reference}.{caveat}')


def build_metric(metric_class: type, given: Optional[str], log: Callable[[str], None], device='cpu'):
    """``metric_class`` (LPIPSMetric or FIDMetric) from a weights file. A file named on the command line
    (``given``) must exist: the run stops at once otherwise. Without one the documented places are searched,
    and a missing file or package becomes a note (``log``) and None: never a silent skip."""
    if given:
        return metric_class(given, device)
    try:
        return metric_class(None, device)
    except (FileNotFoundError, ImportError) as err:
        log(f'{metric_class.name} not computed: {err}')
        return None


__all__ = ['LPIPSMetric', 'FIDMetric', 'build_metric', 'find_weights', 'fid_protocol', 'search_dirs',
           'LPIPS_BACKBONE', 'FID_INCEPTION']
