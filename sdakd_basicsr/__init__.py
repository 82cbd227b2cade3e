"""sdakd_basicsr: SDAKD (Student Discriminator Assisted Knowledge Distillation) for BasicSR.

Importing the package applies the basicsr 1.4.2 compatibility fixes (``compat``) and registers the
model, architectures, losses and datasets in basicsr's registries.
"""
from . import compat

compat.apply()  # before any other basicsr import: basicsr's own import needs fix 1

from . import archs, data, losses, models  # noqa: E402,F401  (registration)

__version__ = '0.1.0'
