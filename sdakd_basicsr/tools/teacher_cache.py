"""Build the teacher cache of an option file: the teacher's output and tapped features on every LR image.

    python -m sdakd_basicsr.tools.teacher_cache -opt options/my_paired_stage2.yml [--device cuda]

The option file needs paired data (``high_order_degradation: false``), ``sdakd.teacher_g`` and
``datasets.train.teacher_cache`` (the file to write); train with ``type: TeacherCachedPairedDataset``.
See docs/training.md, "Teacher cache".
"""
import argparse
import sys
from typing import List, Optional

import sdakd_basicsr  # noqa: F401  (compat fixes + registration)
from sdakd_basicsr.distill.option_file import read_option_file
from sdakd_basicsr.distill.teacher_cache_builder import build_from_options


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='SDAKD option file')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    try:
        opt = read_option_file(args.opt)
        build_from_options(opt, args.device)  # the old .json goes first: an interrupted build is never taken
    except (OSError, ValueError, KeyError) as err:  # a bad option file, teacher, image or output: named
        print(f'error: {err}', file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
