"""Build a GCFSR validation set: LR faces at several scales from a folder of GT faces.

    python -m sdakd_basicsr.tools.make_face_valset --gt datasets/celeba_val_512 --out datasets/face_val --size 512

writes ``<out>/gt/<name>.png`` (GT at --size) and ``<out>/x<scale>/<name>.png`` (MATLAB-style bicubic LR)
for each scale; point ``GCFSRFaceValDataset`` at ``<out>/x<scale>`` (``dataroot_lq``) and ``<out>/gt``.
"""
import argparse
import os
from os import path as osp
from typing import List, Optional

import cv2
import numpy as np

from basicsr.utils.matlab_functions import imresize

from ..metrics.images import list_images


def make_face_valset(gt_dir: str, out: str, size: int = 512, scales=(8, 16, 32, 64)) -> List[str]:
    for scale in scales:
        if size % scale:
            raise ValueError(f'--size {size} is not divisible by scale {scale}')
    written = []
    for path in list_images(gt_dir, '--gt'):
        name = osp.splitext(osp.basename(path))[0] + '.png'
        gt = cv2.imread(path, cv2.IMREAD_COLOR).astype(np.float32) / 255.
        if gt.shape[:2] != (size, size):
            gt = cv2.resize(gt, (size, size), interpolation=cv2.INTER_AREA)
        os.makedirs(osp.join(out, 'gt'), exist_ok=True)
        cv2.imwrite(osp.join(out, 'gt', name), np.round(gt * 255).astype(np.uint8))
        for scale in scales:
            folder = osp.join(out, f'x{scale}')
            os.makedirs(folder, exist_ok=True)
            lr = np.clip(imresize(gt, 1 / scale), 0, 1)
            cv2.imwrite(osp.join(folder, name), np.round(lr * 255).astype(np.uint8))
        written.append(name)
    return written


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gt', required=True, help='folder of GT faces')
    parser.add_argument('--out', required=True)
    parser.add_argument('--size', type=int, default=512, help='GT size (faces are resized to it)')
    parser.add_argument('--scales', type=int, nargs='+', default=[8, 16, 32, 64])
    args = parser.parse_args(argv)
    names = make_face_valset(args.gt, args.out, args.size, args.scales)
    print(f'{len(names)} faces -> {args.out}/gt and ' + ', '.join(f'{args.out}/x{s}' for s in args.scales))


if __name__ == '__main__':
    main()
