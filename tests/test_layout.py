"""The package's shape: function-level imports state their reason (scripts/check_lazy_imports.py, run by
`make lint`), and every module imports on its own."""
import importlib
import pkgutil
from os import path as osp

import sdakd_basicsr

from tests.helpers import REPO, load_script


def _checker():
    return load_script('check_lazy_imports')


def test_lazy_import_check_flags_an_import_without_a_reason():
    check = _checker()
    source = ('import os\n\n\ndef f():\n    import json\n    return json\n\n\n'
              'def g():\n    import lpips  # lazy: optional\n    import lpips.x\n    return lpips\n')
    assert [line for line, _ in check.unjustified_imports(source)] == [5]  # g's run of imports shares its reason
    assert list(check.unjustified_imports('# lazy-imports: all of them, for one reason\n' + source)) == []


def test_every_function_level_import_of_the_package_says_why():
    assert _checker().main([osp.join(REPO, 'sdakd_basicsr')]) == 0


def test_every_module_imports():
    for module in pkgutil.walk_packages(sdakd_basicsr.__path__, 'sdakd_basicsr.'):
        importlib.import_module(module.name)
