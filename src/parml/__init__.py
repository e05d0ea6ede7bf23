"""parml: multicore machine learning on native OpenMP kernels."""
from ._threads import effective_n_threads
from ._version import __version__
from .ops import add, matmul

__all__ = ["__version__", "add", "effective_n_threads", "matmul"]
