"""Every dataset BasicSR builds, guarded: a sample that cannot be read names its file(s).

BasicSR's readers fail on a corrupt or truncated image deep inside the loader, with ``'NoneType' object has no
attribute 'astype'`` and no file name. ``GuardedDataset`` (put around what ``basicsr.data.build_dataset``
returns, by ``compat``) catches the failure of one sample and either stops with the file, the dataset entry and
the cause (``datasets.<phase>.on_bad_image: stop``, the default) or warns once per file and serves the next
sample instead (``skip``).
"""
import logging
from typing import Any, List

from torch.utils.data import Dataset

POLICIES = ('stop', 'skip')


def sample_files(dataset, index: int) -> List[str]:
    """The file(s) behind sample ``index`` of a basicsr-style dataset (its ``paths`` list), if it has one."""
    paths = getattr(dataset, 'paths', None)
    try:
        entry = paths[index % len(paths)]
    except (TypeError, IndexError, ZeroDivisionError):
        return []
    if isinstance(entry, dict):
        return [str(v) for k, v in entry.items() if k.endswith('_path')]
    return [str(entry)]


class GuardedDataset(Dataset):

    def __init__(self, dataset, opt: dict) -> None:
        self.dataset = dataset
        self.where = f'datasets.{opt.get("phase", "?")} ({opt.get("name", type(dataset).__name__)})'
        self.policy = opt.get('on_bad_image', 'stop')
        if self.policy not in POLICIES:
            raise ValueError(f'{self.where}.on_bad_image must be stop or skip, got {self.policy!r}')
        self.skipped: set = set()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # opt, paths, ... of the wrapped dataset
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int):
        for attempt in range(min(len(self.dataset), 100)):
            i = (index + attempt) % len(self.dataset)
            try:
                return self.dataset[i]
            except (ValueError, KeyError):
                raise  # the dataset's own checks name what they found
            except Exception as err:  # noqa: BLE001 (a reader failure: cv2's None, OSError, EOFError, ...)
                files = sample_files(self.dataset, i) or [f'sample {i}']
                cause = f'{type(err).__name__}: {err}'
                if self.policy == 'stop':
                    raise OSError(f'{self.where}: cannot read {", ".join(files)} ({cause}); fix or remove the '
                                  f'file, or set on_bad_image: skip') from err
                if i not in self.skipped:
                    self.skipped.add(i)
                    logging.getLogger('basicsr').warning(f'{self.where}: skipping unreadable {", ".join(files)} '
                                                         f'({cause})')
        raise OSError(f'{self.where}: 100 consecutive samples unreadable from index {index}; stopping')
