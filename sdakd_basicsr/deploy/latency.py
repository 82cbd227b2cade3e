"""Latency of one generator in the runtimes Real-ESRGAN models run in: PyTorch, ONNX Runtime and the ncnn
engine of realesrgan-ncnn-vulkan (CPU), at a chosen number of threads.

Each ``*_runner`` returns a callable that runs one forward pass on a fixed LR image, or None with the reason
when that runtime is not available for the network here. Callers time the callables side by side
(``cost.interleaved_medians``) so that machine noise hits every network alike. The ncnn engine has no thread
setting: ``ncnn_latency`` runs it in a child process pinned to ``threads`` CPUs (the engine sizes its pool by
the CPUs it may use), so it is timed in the child, alone.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from os import path as osp
from typing import Callable, Optional, Tuple

import numpy as np
import torch
from torch import nn

from ..archs.generator_call import family_of
from .ncnn import missing_system_libraries, ncnn_engine, ncnn_writable, write_ncnn
from .onnx_export import export_onnx

Runner = Callable[[], object]


def pytorch_runner(net: nn.Module, x: torch.Tensor) -> Runner:
    """One no-grad forward pass (threads: ``torch.set_num_threads`` of the caller)."""
    net = net.eval()

    def run() -> None:
        with torch.no_grad():
            net(x)
        if x.is_cuda:
            torch.cuda.synchronize()
    return run


def onnx_runner(net: nn.Module, x: torch.Tensor, threads: int, folder: str) -> Tuple[Optional[Runner], str]:
    """(an ONNX Runtime session's forward pass with ``threads`` intra-op threads, '') or (None, why not)."""
    try:
        import onnxruntime as ort  # lazy: optional (extra `export`)
    except ImportError:
        return None, 'onnxruntime is not installed'
    path = osp.join(folder, f'{id(net)}.onnx')
    export_onnx(net.cpu().eval(), path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    feed = {'lr': x.cpu().numpy()}
    return (lambda: session.run(None, feed)), ''


def ncnn_latency(net: nn.Module, spec: dict, side: int, threads: int, repeats: int,
                 folder: str) -> Tuple[Optional[float], str]:
    """(median seconds of the ncnn engine on a ``side`` x ``side`` image with ``threads`` CPUs, '') or
    (None, why not). The files are written as a release writes them (fp16 weights, the official layout)."""
    why_not = ncnn_writable(spec)
    if why_not:
        return None, why_not
    missing = missing_system_libraries()
    if missing:
        return None, f'the ncnn engine needs the system libraries of {missing}'
    base = osp.join(folder, f'ncnn_{id(net)}')
    write_ncnn({k: v.detach().cpu() for k, v in net.state_dict().items()}, spec, base + '.param', base + '.bin')
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    payload = json.dumps(dict(param=base + '.param', bin=base + '.bin', scale=family_of(spec).scale_of(spec),
                              side=side, repeats=repeats, cpus=cpus))
    result = subprocess.run([sys.executable, '-m', 'sdakd_basicsr.deploy.latency', payload], capture_output=True,
                            text=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith('{')]
    if result.returncode != 0 or not lines:
        return None, f'the ncnn engine failed: {result.stderr.strip()[-300:]}'
    return float(json.loads(lines[-1])['median_s']), ''


def _ncnn_child(payload: str) -> None:
    """In a child process: pin to the given CPUs, load the engine, time ``repeats`` runs after one warm-up."""
    args = json.loads(payload)
    os.sched_setaffinity(0, set(args['cpus']))
    engine = ncnn_engine(args['param'], args['bin'], scale=args['scale'], gpuid=-1)
    img = np.random.default_rng(0).integers(0, 256, (args['side'], args['side'], 3), dtype=np.uint8)
    engine.process_cv2(img)
    times = []
    for _ in range(args['repeats']):
        start = time.perf_counter()
        engine.process_cv2(img)
        times.append(time.perf_counter() - start)
    print(json.dumps({'median_s': float(np.median(times))}), flush=True)


def scratch_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix='sdakd_runtimes_')


if __name__ == '__main__':
    _ncnn_child(sys.argv[1])
