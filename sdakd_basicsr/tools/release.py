"""Write a release folder for a trained student: .pth (params_ema only), .onnx, ncnn .param/.bin (fp16 and
fp32), release.json and model_card.md.

    python -m sdakd_basicsr.tools.release -opt options/sdakd_realesrgan_stage3.yml --out releases/student_x4
    python -m sdakd_basicsr.tools.release -opt options/demo/sdakd_demo_stage3.yml --checkpoint <pth> \\
        --evaluation results/evaluate/results.md --picture experiments/sdakd_demo_report/comparison.png
    python -m sdakd_basicsr.tools.release --checkpoint experiments/<run>/models/net_g_latest.pth --out releases/s

The checkpoint defaults to the option file's own result (experiments/<name>/models/net_g_latest.pth); without
``-opt`` the architecture is read from the checkpoint's weights (RRDBNet or SRVGGNetCompact) and the card lists no
stages. The model card lists the stages that made it (from the experiment folders), params, MACs, CPU latency,
the ONNX parity and where the student runs. Everything named is checked before anything is written (a bad
checkpoint, a missing evaluation or picture, an output path that is a file or not writable: exit 2, nothing
written); files in the folder that the release does not write are left alone. See docs/tools.md, "Release".
"""
import argparse
import sys
from os import path as osp
from typing import List, Optional

from sdakd_basicsr.deploy.inference import checkpoint_file, load_upscaler
from sdakd_basicsr.deploy.release import make_release
from sdakd_basicsr.distill.option_file import read_option_file
from sdakd_basicsr.metrics.images import check_output_folder


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('-opt', help='the option file of the stage that made the student (else --checkpoint alone: '
                        'the architecture is read from its weights)')
    parser.add_argument('--checkpoint', help='default: experiments/<name>/models/net_g_latest.pth')
    parser.add_argument('--out', help='release folder (default: releases/<name>)')
    parser.add_argument('--name', help='file names in the folder (default: the folder name)')
    parser.add_argument('--evaluation', help='an evaluation table to include (e.g. from tools.evaluate)')
    parser.add_argument('--picture', help='a comparison picture to include')
    args = parser.parse_args(argv)
    if not args.opt and not args.checkpoint:
        parser.error('give -opt (the stage file that made the student) or --checkpoint (a checkpoint or release '
                     'folder)')
    try:
        checkpoint = checkpoint_file(args.checkpoint, '--checkpoint') if args.checkpoint else None  # file or folder
        if args.opt:
            opt = read_option_file(args.opt)
        else:  # the architecture from the weights, as tools.upscale reads it
            spec = load_upscaler(checkpoint, what='--checkpoint')[2]
            opt = {'name': osp.splitext(osp.basename(osp.normpath(args.checkpoint)))[0], 'network_g': spec}
        out = args.out or osp.join('releases', opt['name'])
        for flag, path in (('--evaluation', args.evaluation), ('--picture', args.picture)):
            if path and not osp.isfile(path):
                raise FileNotFoundError(f'{flag}: no such file: {path}')
        check_output_folder(out, '--out', create=False)  # made by make_release, after the student loads
        name = args.name or osp.basename(osp.normpath(out))
        make_release(opt, out, name, checkpoint, args.evaluation, args.picture)  # loads the student first
    except (OSError, ValueError, KeyError) as err:
        print(f'error: {err}', file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
