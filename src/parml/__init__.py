"""parml: multicore machine learning on native parallel kernels."""
# first: chooses the kernel set (PARML_ISA) before any kernel module is used
from ._isa import kernel_set, supported_kernel_sets
from ._include import get_include
from ._threads import effective_n_threads
from ._version import __version__
from .ops import add, matmul
from .persistence import ModelFormatError, load, save

__all__ = ["__version__", "ModelFormatError", "add", "effective_n_threads", "get_include", "kernel_set", "load",
           "matmul", "save", "supported_kernel_sets"]
