"""The numpy mirrors of the C records in _types.pxd, each written once: the kernel modules import
them from here (parml._kernels._histogram re-exports HBIN and SPLIT). layout() reports the C side
(sizeof, and each field's offset and size as the compiler lays it out), so a test can check that
a mirror and its struct agree field by field."""

import numpy as np

from libc.stdint cimport uintptr_t

from parml._kernels._types cimport parml_hbin, parml_split, parml_qnode


# little-endian, packed (no alignment padding: the C structs have none), field order as in C
HBIN = np.dtype([("g", "<f8"), ("h", "<f8"), ("count", "<u4"), ("pad", "<u4")])
SPLIT = np.dtype([("gain", "<f8"), ("bin", "<i4"), ("missing_left", "<i4"), ("gl", "<f8"),
                  ("hl", "<f8"), ("gr", "<f8"), ("hr", "<f8"), ("nl", "<i8"), ("nr", "<i8"),
                  ("is_cat", "<i4"), ("pad", "<i4"), ("cats", "<u4", (8,))])
QNODE = np.dtype([("thr", "<f8"), ("fm", "<u4"), ("left", "<i4")])

# each mirror with the name of its C struct
RECORDS = {"parml_hbin": HBIN, "parml_split": SPLIT, "parml_qnode": QNODE}


cdef inline Py_ssize_t _off(const void *field, const void *base):
    return <Py_ssize_t>(<uintptr_t>field - <uintptr_t>base)


def layout(str struct):
    """(sizeof(struct), {field: (offset, size)}) of one C record of RECORDS, as compiled."""
    cdef parml_hbin hb
    cdef parml_split sp
    cdef parml_qnode qn
    if struct == "parml_hbin":
        return sizeof(hb), {"g": (_off(&hb.g, &hb), sizeof(hb.g)),
                            "h": (_off(&hb.h, &hb), sizeof(hb.h)),
                            "count": (_off(&hb.count, &hb), sizeof(hb.count)),
                            "pad": (_off(&hb.pad, &hb), sizeof(hb.pad))}
    if struct == "parml_split":
        return sizeof(sp), {"gain": (_off(&sp.gain, &sp), sizeof(sp.gain)),
                            "bin": (_off(&sp.bin, &sp), sizeof(sp.bin)),
                            "missing_left": (_off(&sp.missing_left, &sp), sizeof(sp.missing_left)),
                            "gl": (_off(&sp.gl, &sp), sizeof(sp.gl)),
                            "hl": (_off(&sp.hl, &sp), sizeof(sp.hl)),
                            "gr": (_off(&sp.gr, &sp), sizeof(sp.gr)),
                            "hr": (_off(&sp.hr, &sp), sizeof(sp.hr)),
                            "nl": (_off(&sp.nl, &sp), sizeof(sp.nl)),
                            "nr": (_off(&sp.nr, &sp), sizeof(sp.nr)),
                            "is_cat": (_off(&sp.is_cat, &sp), sizeof(sp.is_cat)),
                            "pad": (_off(&sp.pad, &sp), sizeof(sp.pad)),
                            "cats": (_off(&sp.cats[0], &sp), sizeof(sp.cats))}
    if struct == "parml_qnode":
        return sizeof(qn), {"thr": (_off(&qn.thr, &qn), sizeof(qn.thr)),
                            "fm": (_off(&qn.fm, &qn), sizeof(qn.fm)),
                            "left": (_off(&qn.left, &qn), sizeof(qn.left))}
    raise KeyError(f"layout: no record {struct!r}; known: {sorted(RECORDS)}")


def views(const parml_hbin[::1] hbin not None, const parml_split[::1] split not None,
          const parml_qnode[::1] qnode not None):
    """The lengths of one array of each record, taken as typed memoryviews of the structs: Cython
    checks each field's type and offset against the array's dtype on the way in."""
    return hbin.shape[0], split.shape[0], qnode.shape[0]
