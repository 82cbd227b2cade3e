"""Test helper run under torchrun: sdakd_basicsr.train, plus every rank's final weights dumped to disk."""
import os
import sys

import torch

from sdakd_basicsr.archs.generator_call import bare_model as bare
from sdakd_basicsr.models.sdakd_model import SDAKDModel

original_save = SDAKDModel.save
original_init = SDAKDModel.init_training_settings


def _dump(model, tag):
    nets = {k: {n: v.clone() for n, v in bare(getattr(model, k)).state_dict().items()}
            for k in ('net_g', 'net_d', 'net_d_teacher', 'net_adapters') if getattr(model, k, None) is not None}
    nets['_wrapped'] = {k: type(getattr(model, k)).__name__ for k in
                        ('net_g', 'net_d', 'net_d_teacher', 'net_adapters', 'net_g_teacher', 'net_g_ema')
                        if getattr(model, k, None) is not None}
    torch.save(nets, f'rank{os.environ.get("RANK", "0")}_{model.opt["name"]}_{tag}.pth')


def init_training_settings(self):
    original_init(self)
    _dump(self, 'init')


def save(self, epoch, current_iter):
    original_save(self, epoch, current_iter)
    if current_iter == -1:
        _dump(self, 'final')


SDAKDModel.save = save
SDAKDModel.init_training_settings = init_training_settings

if __name__ == '__main__':
    from sdakd_basicsr.train import main
    main(sys.argv[1:])
