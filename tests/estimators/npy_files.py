"""Test helper: write an array as a .npy file through a memory map (no whole-file copy)."""
import numpy as np


def write_npy(path, X):
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    return path
