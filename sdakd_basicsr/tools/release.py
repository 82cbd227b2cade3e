"""Write a release folder for a trained student: .pth (params_ema only), .onnx, ncnn .param/.bin (fp16 and
fp32), release.json and model_card.md.

    python -m sdakd_basicsr.tools.release -opt options/sdakd_realesrgan_stage3.yml --out releases/student_x4
    python -m sdakd_basicsr.tools.release -opt options/demo/sdakd_demo_stage3.yml --checkpoint <pth> \\
        --evaluation results/evaluate/results.md --picture experiments/sdakd_demo_report/comparison.png

The checkpoint defaults to the option file's own result (experiments/<name>/models/net_g_latest.pth); the
model card lists the stages that made it (from the experiment folders), params, MACs, CPU latency and the
ONNX parity. See docs/tools.md, "Release".
"""
import argparse
from os import path as osp
from typing import List, Optional

from sdakd_basicsr.deploy.release import make_release
from sdakd_basicsr.distill.option_file import read_option_file


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', required=True, help='the option file of the stage that made the student')
    parser.add_argument('--checkpoint', help='default: experiments/<name>/models/net_g_latest.pth')
    parser.add_argument('--out', help='release folder (default: releases/<name>)')
    parser.add_argument('--name', help='file names in the folder (default: the folder name)')
    parser.add_argument('--evaluation', help='an evaluation table to include (e.g. from tools.evaluate)')
    parser.add_argument('--picture', help='a comparison picture to include')
    args = parser.parse_args(argv)

    opt = read_option_file(args.opt)
    out = args.out or osp.join('releases', opt['name'])
    name = args.name or osp.basename(osp.normpath(out))
    make_release(opt, out, name, args.checkpoint, args.evaluation, args.picture)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
