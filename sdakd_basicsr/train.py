"""Train with SDAKD registered; the same flags as basicsr/train.py.

    python sdakd_basicsr/train.py -opt options/sdakd_realesrgan_stage1.yml [--auto_resume] [--debug]
    python -m sdakd_basicsr.train -opt ... [--launcher pytorch] [--force_yml key=value ...]

The root path (experiments/, tb_logger/, auto-resume, and relative data and checkpoint paths) is the
directory you run from, for all of them alike.
"""
import os
import sys
from os import path as osp
from typing import Optional, Sequence

if __package__ in (None, ''):  # `python sdakd_basicsr/train.py`: import the package, not its folder
    sys.path[0] = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))

import sdakd_basicsr  # noqa: E402,F401  (compat fixes + registration)
from sdakd_basicsr.compat import normalize_launcher_argv, reset_root_logger, set_dist_backend  # noqa: E402
from sdakd_basicsr.distill.preflight import ExperimentLock, preflight  # noqa: E402


def main(argv: Optional[Sequence[str]] = None, root_path: Optional[str] = None) -> None:
    from basicsr.train import train_pipeline  # lazy: after compat (isort would sort it above `import sdakd_basicsr`)
    argv = list(sys.argv[1:] if argv is None else argv)
    root = osp.abspath(root_path or os.getcwd())
    # every check before basicsr creates or archives the experiment folder; one live run per experiment
    opt = preflight(argv, root)
    rank = int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')))
    lock = ExperimentLock(root, opt['name']) if opt is not None and rank == 0 else None
    if lock is not None:
        lock.acquire()
    try:
        sys.argv = [sys.argv[0]] + normalize_launcher_argv(argv)  # basicsr's parse_options reads sys.argv
        reset_root_logger()
        # dist_params.backend (basicsr's parse_options ignores it for --launcher pytorch)
        set_dist_backend(((opt or {}).get('dist_params') or {}).get('backend'))
        train_pipeline(root)
    finally:
        if lock is not None:
            lock.release()


if __name__ == '__main__':
    main()
