"""Quality of generators on (LR, GT) pairs: PSNR/SSIM on RGB and Y, PSNR against the teacher (RGB and Y: their
gap is a colour shift), NIQE, and high-frequency energy relative to the teacher (sharpness without weights)."""
from collections import defaultdict
from typing import Callable, Dict, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor, nn

from basicsr.metrics import calculate_niqe, calculate_psnr, calculate_ssim
from basicsr.utils.color_util import rgb2ycbcr

from .images import to_image, to_tensor

Generator = Callable[[Tensor], Tensor]  # LR (1x3xhxw, RGB [0, 1]) -> SR


def bicubic(scale: int = 4) -> Generator:
    return lambda x: nn.functional.interpolate(x, scale_factor=scale, mode='bicubic', align_corners=False)


def network(net: nn.Module) -> Generator:
    net.eval()

    def run(x: Tensor) -> Tensor:
        with torch.no_grad():
            return net(x.to(next(net.parameters()).device))
    return run


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., ::-1].copy()


HF_SIGMA = 1.5  # the Gaussian whose residual counts as high frequency (about 1/4 of the x4 Nyquist band and up)


def chroma_psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 4) -> float:
    """PSNR over the Cb and Cr channels (BT.601, 0-255 scale) of two RGB uint8 images: colour differences only.

    The gap between RGB and Y PSNR is no colour measure: a pure brightness error already puts Y 1.3 dB above
    RGB (Y's range is 219/255 of RGB's), and independent per-channel errors put it about 5 dB above.
    """
    ca, cb = (rgb2ycbcr(x.astype(np.float32) / 255.)[..., 1:] * 255. for x in (a, b))
    if crop_border:
        ca, cb = (x[crop_border:-crop_border, crop_border:-crop_border] for x in (ca, cb))
    mse = float(np.mean((ca - cb)**2))
    return float('inf') if mse == 0 else 10 * np.log10(255.**2 / mse)


def high_frequency_energy(rgb: np.ndarray, crop_border: int = 4, sigma: float = HF_SIGMA) -> float:
    """Mean squared high-pass residual of the luminance (0-255 scale): Y minus its Gaussian blur.

    Needs no learned weights. Over-smoothed (blurry) outputs have less of it than the teacher's, noisy or
    over-sharpened ones more; ``hf_ratio`` in ``evaluate`` is this value over the teacher's on the same image.
    """

    y = rgb2ycbcr(rgb.astype(np.float32) / 255., y_only=True) * 255.
    if crop_border:
        y = y[crop_border:-crop_border, crop_border:-crop_border]
    residual = y - cv2.GaussianBlur(y, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return float(np.mean(residual**2))


def evaluate(generators: Dict[str, Generator], pairs: Sequence[tuple], teacher: str = 'teacher',
             crop_border: int = 4, log: Callable[[str], None] = print) -> Dict[str, Dict[str, float]]:
    """Mean metrics per generator over ``pairs`` of (name, lr_rgb, gt_rgb): PSNR/SSIM on RGB and on Y,
    ``psnr_teacher``, ``psnr_teacher_y`` and ``psnr_teacher_cbcr``, ``hf_ratio``, NIQE; ``results['_outputs']``
    holds the images.

    ``psnr_teacher(_y)`` compares with the output of the generator named ``teacher`` on RGB (on Y): an RGB
    value far below the Y value means a colour shift. ``hf_ratio`` is the high-frequency energy over the
    teacher's (1 = as sharp as the teacher). NIQE is skipped (NaN) on images too small for it, with a message.
    """
    outputs: Dict[str, Dict[str, np.ndarray]] = defaultdict(dict)
    for img_name, lr, _ in pairs:
        x = to_tensor(lr)
        for name, gen in generators.items():
            outputs[name][img_name] = to_image(gen(x))
    teacher_hf = ({img: max(high_frequency_energy(out, crop_border), 1e-12) for img, out in outputs[teacher].items()}
                  if teacher in outputs else {})
    results = {}
    for name in generators:
        rows, niqe_skipped = defaultdict(list), []
        for img_name, _, gt in pairs:
            sr = outputs[name][img_name]
            rows['psnr'].append(calculate_psnr(sr, gt, crop_border))
            rows['ssim'].append(calculate_ssim(_bgr(sr), _bgr(gt), crop_border))
            rows['psnr_y'].append(calculate_psnr(_bgr(sr), _bgr(gt), crop_border, test_y_channel=True))
            rows['ssim_y'].append(calculate_ssim(_bgr(sr), _bgr(gt), crop_border, test_y_channel=True))
            if teacher in outputs:
                ref = outputs[teacher][img_name]
                same = name == teacher
                rows['psnr_teacher'].append(float('inf') if same else calculate_psnr(sr, ref, crop_border))
                rows['psnr_teacher_y'].append(float('inf') if same else calculate_psnr(
                    _bgr(sr), _bgr(ref), crop_border, test_y_channel=True))
                rows['psnr_teacher_cbcr'].append(float('inf') if same else chroma_psnr(sr, ref, crop_border))
                rows['hf_ratio'].append(high_frequency_energy(sr, crop_border) / teacher_hf[img_name])
            try:
                rows['niqe'].append(float(calculate_niqe(_bgr(sr), crop_border)))
            except Exception as err:  # NIQE needs several 96x96 blocks after cropping
                niqe_skipped.append(f'{img_name} ({sr.shape[0]}x{sr.shape[1]}: {str(err).splitlines()[0][:60]})')
        if niqe_skipped:
            log(f'NIQE skipped for {name} on {len(niqe_skipped)} of {len(pairs)} images (too small for its 96x96 '
                f'blocks after the {crop_border}-pixel crop): ' + ', '.join(niqe_skipped[:3])
                + (' ...' if len(niqe_skipped) > 3 else ''))
        results[name] = {k: (float(np.mean(v)) if v else float('nan')) for k, v in rows.items()}
    results['_outputs'] = outputs
    return results
