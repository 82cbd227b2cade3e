"""Student/teacher inference speed-up against the MAC ratio, measured side by side in one run.

    python benchmarks/inference_ratio.py [--size 256] [--repeats 3] [--device cpu]

Target (issue 6): the latency speed-up reaches at least 80 % of the MAC ratio. Random weights (speed does
not depend on them); RRDBNet x4 with 23 blocks at widths 1, 1/2, 1/4.
"""
import argparse
import sys
from os import path as osp

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir)))
import sdakd_basicsr  # noqa: E402,F401
from basicsr.archs.rrdbnet_arch import RRDBNet  # noqa: E402

from sdakd_basicsr.tools.report import count_macs, markdown_table, profile_latency  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=256, help='LR input side')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    device = torch.device(args.device)
    x = torch.rand(1, 3, args.size, args.size, device=device)
    results = {}
    for width in (1, 0.5, 0.25):
        net = RRDBNet(3, 3, num_feat=int(64 * width), num_block=23, num_grow_ch=int(32 * width)).to(device).eval()
        with torch.device('meta'):
            macs = count_macs(RRDBNet(3, 3, num_feat=int(64 * width), num_block=23, num_grow_ch=int(32 * width)),
                              torch.empty(1, 3, args.size, args.size))
        results[width] = (macs, profile_latency(net, x, repeats=args.repeats))
        print(f'width {width}: {results[width][1]:.2f} s', flush=True)
    t_macs, t_lat = results[1]
    rows = []
    for width in (0.5, 0.25):
        macs, lat = results[width]
        mac_ratio, speedup = t_macs / macs, t_lat / lat
        rows.append([f'1/{int(1 / width)}', f'{lat:.2f} s', f'{speedup:.2f}x', f'{mac_ratio:.2f}x',
                     f'{100 * speedup / mac_ratio:.0f} %', 'met' if speedup >= 0.8 * mac_ratio else 'NOT met'])
    print(markdown_table(['student width', 'latency', 'speed-up', 'MAC ratio', 'speed-up / MAC ratio',
                          'target >= 80 %'], rows))
    print(f'\nteacher: {t_lat:.2f} s at {args.size}x{args.size} LR on {device} (threads {torch.get_num_threads()}, '
          f'median of {args.repeats}); command: python benchmarks/inference_ratio.py {" ".join(sys.argv[1:])}')


if __name__ == '__main__':
    main()
