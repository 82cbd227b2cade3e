"""Latency and parity of every format in a release folder, measured side by side on one LR image.

    python benchmarks/release_formats.py releases/<name> [--image datasets/demo/heldout/lq/astronaut.png]
        [--repeats 5] [--border 16]

PyTorch (the .pth), ONNX Runtime (the .onnx) and the realesrgan-ncnn-py engine on the CPU (the fp16 and fp32
ncnn files), timed round-robin (medians). Parity: PSNR of each format's uint8 output against PyTorch's, on
the whole image and away from a ``--border``-pixel output border (the ncnn engine pads its input its own way).
"""
import argparse
import os
import sys
from os import path as osp

import cv2
import numpy as np
import torch

REPO = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
sys.path.insert(0, REPO)
# isort: off
import sdakd_basicsr  # noqa: E402,F401
# isort: on
from sdakd_basicsr.deploy.inference import load_upscaler, upscale  # noqa: E402
from sdakd_basicsr.deploy.release import read_release  # noqa: E402
from sdakd_basicsr.metrics.cost import interleaved_medians  # noqa: E402
from sdakd_basicsr.metrics.reporting import markdown_table  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float('inf') if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('release')
    parser.add_argument('--image', default=osp.join(REPO, 'datasets', 'demo', 'heldout', 'lq', 'astronaut.png'))
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--border', type=int, default=16)
    args = parser.parse_args()
    meta = read_release(args.release)
    files = {k: osp.join(args.release, v) for k, v in meta['files'].items()}
    img = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'--image: cannot read {args.image}')
    net, scale, _ = load_upscaler(files['pytorch'])
    outputs, runners = {}, {}

    def run_torch():
        outputs['PyTorch (.pth)'] = upscale(net, scale, img)[0]
    runners['PyTorch (.pth)'] = run_torch
    if 'onnx' in files:
        import onnxruntime as ort
        session = ort.InferenceSession(files['onnx'], providers=['CPUExecutionProvider'])
        x = (cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()

        def run_onnx():
            out = session.run(None, {'lr': x})[0][0].clip(0, 1).transpose(1, 2, 0)
            outputs['ONNX Runtime (.onnx)'] = cv2.cvtColor((out * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
        runners['ONNX Runtime (.onnx)'] = run_onnx
    from sdakd_basicsr.deploy.ncnn import ncnn_engine
    for kind, label in (('ncnn_fp16', 'ncnn engine, fp16 weights'), ('ncnn_fp32', 'ncnn engine, fp32 weights')):
        if kind in files:
            engine = ncnn_engine(files[kind], files[kind][:-len('.param')] + '.bin', scale, gpuid=-1)

            def run_ncnn(engine=engine, label=label):
                outputs[label] = engine.process_cv2(img)
            runners[label] = run_ncnn
    times = interleaved_medians(runners, args.repeats)
    ref, b = outputs['PyTorch (.pth)'], args.border
    rows = []
    for label, seconds in times.items():
        out = outputs[label]
        rows.append([label, f'{seconds * 1e3:.0f} ms', f'{psnr(out, ref):.1f} dB',
                     f'{psnr(out[b:-b, b:-b], ref[b:-b, b:-b]):.1f} dB'])
    print(f'{meta["name"]}: {img.shape[1]}x{img.shape[0]} LR -> x{scale}; CPU threads {torch.get_num_threads()}, '
          f'ncnn on the CPU (gpuid -1); medians of {args.repeats} round-robin rounds; {os.cpu_count()} cores')
    print(markdown_table(['format', 'latency', 'PSNR vs PyTorch (whole)', f'PSNR vs PyTorch (interior, {b} px border)'],
                         rows))


if __name__ == '__main__':
    main()
