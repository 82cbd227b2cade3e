"""Write the demo data from scikit-image's bundled images (no downloads): training tiles with their x4 LR and
the held-out images (``sdakd_basicsr/data/demo_images.py``).

    python -m sdakd_basicsr.tools.demo_data --out datasets/demo
"""
import argparse
from typing import List, Optional

import sdakd_basicsr  # noqa: F401  (compat fixes before basicsr)
from sdakd_basicsr.data.demo_images import HELD_OUT_IMAGES, prepare_demo_data


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='datasets/demo')
    parser.add_argument('--tile', type=int, default=192)
    args = parser.parse_args(argv)
    paths = prepare_demo_data(args.out, args.tile)
    n = len(open(paths['meta_info']).read().split())
    print(f'demo data in {args.out}: {n // 2} training tiles, held-out images {", ".join(HELD_OUT_IMAGES)}')


if __name__ == '__main__':
    main()
