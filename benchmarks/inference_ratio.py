"""Student/teacher inference speed-up against the MAC ratio, measured side by side in one run.

    python benchmarks/inference_ratio.py [--size 256] [--repeats 3] [--device cpu]

Target (issue 6): the latency speed-up reaches at least 80 % of the MAC ratio. Random weights (speed does
not depend on them); RRDBNet x4 with 23 blocks at widths 1, 1/2, 1/4, each in the default (contiguous) and
the channels-last memory format.
"""
import argparse
import sys
from os import path as osp

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir)))
# the package's compat fixes must run before basicsr is imported
# isort: off
import sdakd_basicsr  # noqa: E402,F401
from basicsr.archs.rrdbnet_arch import RRDBNet  # noqa: E402
# isort: on
from sdakd_basicsr.deploy.latency import pytorch_runner  # noqa: E402
from sdakd_basicsr.metrics.cost import count_macs, interleaved_medians  # noqa: E402
from sdakd_basicsr.metrics.reporting import markdown_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=int, default=256, help='LR input side')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    device = torch.device(args.device)
    x = torch.rand(1, 3, args.size, args.size, device=device)
    layouts = {'contiguous': torch.contiguous_format, 'channels_last': torch.channels_last}
    macs, runs = {}, {}
    for width in (1, 0.5, 0.25):
        spec = dict(num_in_ch=3, num_out_ch=3, num_feat=int(64 * width), num_block=23, num_grow_ch=int(32 * width))
        with torch.device('meta'):
            macs[width] = count_macs(RRDBNet(**spec), torch.empty(1, 3, args.size, args.size))
        for layout, memory_format in layouts.items():
            net = RRDBNet(**spec).to(device, memory_format=memory_format).eval()
            runs[width, layout] = pytorch_runner(net, x.contiguous(memory_format=memory_format))
    latency = interleaved_medians(runs, args.repeats)  # round-robin: machine noise hits every network alike
    results = {key: (macs[key[0]], seconds) for key, seconds in latency.items()}
    rows = []
    for layout in layouts:
        t_macs, t_lat = results[1, layout]
        rows.append([layout, '1 (teacher)', f'{t_lat:.2f} s', '', '', '', ''])
        for width in (0.5, 0.25):
            macs, lat = results[width, layout]
            mac_ratio, speedup = t_macs / macs, t_lat / lat
            rows.append([layout, f'1/{int(1 / width)}', f'{lat:.2f} s', f'{speedup:.2f}x', f'{mac_ratio:.2f}x',
                         f'{100 * speedup / mac_ratio:.0f} %', 'met' if speedup >= 0.8 * mac_ratio else 'NOT met'])
    print(markdown_table(['memory format', 'width', 'latency', 'speed-up', 'MAC ratio', 'speed-up / MAC ratio',
                          'target >= 80 %'], rows))
    print(f'\n{args.size}x{args.size} LR on {device} (threads {torch.get_num_threads()}, median of {args.repeats}); '
          f'command: python benchmarks/inference_ratio.py {" ".join(sys.argv[1:])}')


if __name__ == '__main__':
    main()
