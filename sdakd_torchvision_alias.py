"""Make ``import torchvision.transforms.functional_tensor`` work again, for every program, without the plugin.

basicsr 1.4.2 (and through it realesrgan and gfpgan) imports ``torchvision.transforms.functional_tensor``,
which torchvision 0.17 renamed to ``_functional_tensor``. This module adds a finder at the *end* of
``sys.meta_path``: it answers only for that one name, only when torchvision itself no longer provides it,
and then hands out torchvision's own ``_functional_tensor`` module. Nothing is imported until someone asks
for the old name, so Python's start-up stays as fast as before.

It is activated by ``sdakd_torchvision_alias.pth`` in site-packages (one line: ``import
sdakd_torchvision_alias``), which ``make install`` writes; by hand:

    python -m sdakd_torchvision_alias --install      # or --uninstall, --status

No installed file is edited: the .pth file is a new file of its own. See docs/compat.md.
"""
import argparse
import importlib
import importlib.abc
import importlib.util
import os
import sys
import sysconfig
from typing import List, Optional

OLD_NAME = 'torchvision.transforms.functional_tensor'
NEW_NAME = 'torchvision.transforms._functional_tensor'
PTH_NAME = 'sdakd_torchvision_alias.pth'


class FunctionalTensorAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves OLD_NAME to NEW_NAME when no earlier finder knows OLD_NAME."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != OLD_NAME:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None  # a placeholder; exec_module swaps in torchvision's own module

    def exec_module(self, module) -> None:
        # the import system returns whatever sys.modules holds under the name after exec_module
        sys.modules[module.__name__] = importlib.import_module(NEW_NAME)


def install_finder() -> None:
    if not any(isinstance(f, FunctionalTensorAlias) for f in sys.meta_path):
        sys.meta_path.append(FunctionalTensorAlias())  # last: torchvision's own module wins where it exists


def pth_path(site_dir: Optional[str] = None) -> str:
    return os.path.join(site_dir or sysconfig.get_paths()['purelib'], PTH_NAME)


def write_pth(site_dir: Optional[str] = None) -> str:
    path = pth_path(site_dir)
    with open(path, 'w', encoding='utf-8') as f:
        f.write('import sdakd_torchvision_alias\n')
    return path


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument('--install', action='store_true', help=f'write {PTH_NAME} into site-packages')
    group.add_argument('--uninstall', action='store_true')
    group.add_argument('--status', action='store_true')
    parser.add_argument('--site-dir', help='another site directory (default: this interpreter\'s purelib)')
    args = parser.parse_args(argv)
    path = pth_path(args.site_dir)
    if args.install:
        print(f'wrote {write_pth(args.site_dir)}')
    elif args.uninstall:
        if os.path.exists(path):
            os.remove(path)
        print(f'removed {path}')
    else:
        print(f'{path}: {"present" if os.path.exists(path) else "absent"}')
    return 0


install_finder()

if __name__ == '__main__':
    raise SystemExit(main())
