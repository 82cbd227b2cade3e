"""What the benchmark scripts share: the repository on the import path and as the working folder (the demo
recipe's paths are relative to it), and an option dict as BasicSR hands it to a model."""
import argparse
import copy
import os
import sys
from os import path as osp

REPO = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
os.chdir(REPO)


def model_options(opt: dict, root: str) -> dict:
    """A stage file as BasicSR hands it to the model: on the CPU, training, not distributed, no resume, its
    models and training states under ``root``."""
    opt = copy.deepcopy(opt)
    opt.update(num_gpu=0, is_train=True, dist=False, rank=0, world_size=1, auto_resume=False, root_path=root)
    opt['path'] = {'resume_state': None, 'models': osp.join(root, 'models'),
                   'training_states': osp.join(root, 'states')}
    return opt


def discriminator_parts(net, real, fake):
    """Two timing closures for a discriminator ``net``: its adversarial pass for the generator (D frozen, so the
    backward computes input gradients only, as in the G step) and its own training step (real, then ``fake()``)."""
    def adversarial_pass():
        for p in net.parameters():
            p.requires_grad = False
        net(fake().detach().requires_grad_(True)).mean().backward()
        for p in net.parameters():
            p.requires_grad = True

    def d_step():
        net(real).mean().backward()
        net(fake().detach()).mean().backward()
    return adversarial_pass, d_step


def timing_parser(doc: str) -> argparse.ArgumentParser:
    """A benchmark's parser with the arguments every side-by-side timing takes: --repeats and --threads."""
    import torch  # lazy: the repository must be on the path before anything imports the package
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=torch.get_num_threads())
    return parser


def parse_timing_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The parsed arguments, with torch's CPU threads set to --threads."""
    import torch  # lazy: as in timing_parser
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args
