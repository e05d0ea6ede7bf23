"""parml: multicore machine learning on native OpenMP kernels."""
from ._threads import effective_n_threads
from ._version import __version__
from .ops import add, matmul
from .persistence import ModelFormatError, load, save

__all__ = ["__version__", "ModelFormatError", "add", "effective_n_threads", "load", "matmul",
           "save"]
