"""Models registered in basicsr's MODEL_REGISTRY (explicit imports, no folder scanning)."""
from .sdakd_model import SDAKDModel  # noqa: F401
