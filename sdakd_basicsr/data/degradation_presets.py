"""The Real-ESRGAN x4plus degradation settings (the values of Real-ESRGAN's train_realesrgan_x4plus.yml), kept
once: ``scripts/make_option_files.py`` stamps these blocks into the Real-ESRGAN option files, the option
schema takes its key list and defaults from them, and the evaluate tool synthesises its seeded LR with them.
Edit here, then run the script."""
from typing import Dict

import yaml

# top-level keys read by basicsr's RealESRGANModel.feed_data (the on-the-fly synthesis)
SYNTHESIS = """\
l1_gt_usm: true      # pixel and perceptual terms against the USM-sharpened GT
percep_gt_usm: true
gan_gt_usm: false    # discriminators see the plain GT
# the first degradation process
resize_prob: [0.2, 0.7, 0.1]  # up, down, keep
resize_range: [0.15, 1.5]
gaussian_noise_prob: 0.5
noise_range: [1, 30]
poisson_scale_range: [0.05, 3]
gray_noise_prob: 0.4
jpeg_range: [30, 95]
# the second degradation process
second_blur_prob: 0.8
resize_prob2: [0.3, 0.4, 0.3]
resize_range2: [0.3, 1.2]
gaussian_noise_prob2: 0.5
noise_range2: [1, 25]
poisson_scale_range2: [0.05, 2.5]
gray_noise_prob2: 0.4
jpeg_range2: [30, 95]
"""

# keys of the training dataset (RealESRGANDataset: blur kernels drawn per image)
KERNELS = """\
blur_kernel_size: 21
kernel_list: ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
kernel_prob: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
sinc_prob: 0.1
blur_sigma: [0.2, 3]
betag_range: [0.5, 4]
betap_range: [1, 2]

blur_kernel_size2: 21
kernel_list2: ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
kernel_prob2: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
sinc_prob2: 0.1
blur_sigma2: [0.2, 1.5]
betag_range2: [0.5, 4]
betap_range2: [1, 2]

final_sinc_prob: 0.8
"""


def synthesis_defaults() -> Dict:
    """The top-level synthesis keys with Real-ESRGAN's values (the option schema's defaults and key list)."""
    return yaml.safe_load(SYNTHESIS)


def kernel_defaults() -> Dict:
    """The training dataset's blur-kernel keys with Real-ESRGAN's values."""
    return yaml.safe_load(KERNELS)


def realesrgan_x4plus_options() -> Dict:
    """An option dict with the synthesis keys and a training-dataset block, for synthesis outside training."""
    train = dict(kernel_defaults(), io_backend={'type': 'disk'}, crop_pad_size=400, gt_size=256,
                 use_hflip=True, use_rot=False)
    return dict(synthesis_defaults(), datasets={'train': train})
