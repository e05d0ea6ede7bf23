"""The numpy mirrors of the kernels' C records (parml._kernels._types) against the layout the C
compiler gives the structs: the same size, and every field at the same offset with the same size,
in the same order. A field moved, added, dropped or resized on either side fails here."""
import numpy as np
import pytest

from parml._kernels import _histogram, _tree_predict
from parml._kernels import _types as T


def mismatches(dtype, struct):
    """What differs between a numpy record dtype and the C struct's layout (empty: none)."""
    size, fields = T.layout(struct)
    out = []
    if dtype.itemsize != size:
        out.append(f"itemsize {dtype.itemsize} != sizeof {size}")
    if list(dtype.names) != sorted(fields, key=lambda f: fields[f][0]):
        out.append(f"field order {list(dtype.names)} != C order "
                   f"{sorted(fields, key=lambda f: fields[f][0])}")
    for name in set(dtype.names) | set(fields):
        if name not in fields or name not in dtype.names:
            out.append(f"field {name!r} on one side only")
            continue
        ftype, offset = dtype.fields[name][:2]
        if (offset, ftype.itemsize) != fields[name]:
            out.append(f"{name}: numpy (offset {offset}, size {ftype.itemsize}) != C "
                       f"(offset, size) {fields[name]}")
    return out


@pytest.mark.parametrize("struct", sorted(T.RECORDS))
def test_mirror_matches_c_layout(struct):
    dtype = T.RECORDS[struct]
    assert mismatches(dtype, struct) == []
    assert dtype.isnative and not dtype.isalignedstruct


@pytest.mark.parametrize("struct", sorted(T.RECORDS))
def test_a_changed_mirror_is_caught(struct):
    """The comparison itself must see a reordered, a dropped and a resized field."""
    dtype = T.RECORDS[struct]
    descr = [(n, dtype.fields[n][0]) for n in dtype.names]
    swapped = descr[:]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert mismatches(np.dtype(swapped), struct)
    assert mismatches(np.dtype(descr[:-1]), struct)
    wider = descr[:-1] + [(descr[-1][0], np.dtype("<f8"), (8,))]
    assert mismatches(np.dtype(wider), struct)


def test_mirrors_convert_to_struct_memoryviews():
    """Cython checks each field's type and offset (as declared in _types.pxd) on conversion."""
    assert T.views(np.zeros(3, T.HBIN), np.zeros(2, T.SPLIT), np.zeros(1, T.QNODE)) == (3, 2, 1)
    with pytest.raises(ValueError):
        T.views(np.zeros(3, [("h", "<f8"), ("count", "<u4"), ("g", "<f8"), ("pad", "<u4")]),
                np.zeros(2, T.SPLIT), np.zeros(1, T.QNODE))
    with pytest.raises(ValueError):
        T.views(np.zeros(3, T.HBIN), np.zeros(2, T.SPLIT), np.zeros(1, T.QNODE.descr[:2]))


def test_one_definition_each():
    """The kernel modules hand out the mirrors themselves, not copies."""
    assert _histogram.HBIN is T.HBIN and _histogram.SPLIT is T.SPLIT
    assert _tree_predict.QNODE is T.QNODE
    assert T.RECORDS["parml_hbin"] is T.HBIN
