"""The teacher discriminator as a feature extractor for feature matching (DCD; docs/method.md, "Texture terms"):
D_T's intermediate features of the student's output against those of the teacher's output on the same LR."""
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

from ..archs.generator_call import bare_model
from ..archs.taps import FeatureTaps

# UNetDiscriminatorSN's encoder and first decoder convolutions: its texture features at 1/1 to 1/8 of the image
DEFAULT_LAYERS = ('conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'conv6')


class DiscriminatorFeatures:
    """Records ``layers`` of a discriminator. Both passes run the bare network in eval mode, so spectral norm's
    power iteration does not advance and a trained D_T's own step is unaffected; gradients reach the student's
    output through the first pass, not D_T's weights (the loop freezes them during the generator step)."""

    def __init__(self, net: nn.Module, layers: Optional[Sequence[str]] = None) -> None:
        self.net = bare_model(net)
        self.taps = FeatureTaps(self.net, list(layers or DEFAULT_LAYERS), owner='teacher discriminator',
                                option_key='train.d_feat_opt.layers')

    def _features(self, images: Tensor) -> List[Tensor]:
        was_training = self.net.training
        self.net.eval()
        try:
            self.taps.clear()
            self.net(images)
            return self.taps.collect()
        finally:
            self.net.train(was_training)
            self.taps.clear()

    def term(self, loss: nn.Module, student_out: Tensor, teacher_out: Tensor) -> Tensor:
        """``loss`` between D_T's features of the student's output (with grad) and of the teacher's (without)."""
        with torch.no_grad():
            target = [f.detach() for f in self._features(teacher_out.detach())]
        return loss(self._features(student_out), target)
