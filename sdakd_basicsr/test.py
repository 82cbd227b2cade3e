"""Test (inference + metrics) with SDAKD registered; the same flags as basicsr/test.py.

    python sdakd_basicsr/test.py -opt options/test/test_student_rrdbnet.yml

Results go to results/<name>/ under the directory you run from.
"""
import os
import sys
from os import path as osp
from typing import Optional, Sequence

if __package__ in (None, ''):
    sys.path[0] = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))

import sdakd_basicsr  # noqa: E402,F401
from sdakd_basicsr.compat import normalize_launcher_argv, reset_root_logger  # noqa: E402


def main(argv: Optional[Sequence[str]] = None, root_path: Optional[str] = None) -> None:
    from basicsr.test import test_pipeline  # lazy: after compat (isort would sort it above `import sdakd_basicsr`)
    argv = list(sys.argv[1:] if argv is None else argv)
    sys.argv = [sys.argv[0]] + normalize_launcher_argv(argv)
    reset_root_logger()
    test_pipeline(osp.abspath(root_path or os.getcwd()))


if __name__ == '__main__':
    main()
