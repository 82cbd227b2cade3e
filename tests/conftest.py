import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
import sdakd_basicsr  # noqa: E402,F401  (compat + registration before anything imports basicsr)

torch.set_num_threads(2)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh root (the user's CWD): tiny teacher checkpoints, tiny data, the shipped options/ folder."""
    from helpers import make_root
    make_root(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path
