"""Kernel-set policy: which instruction-set variant of the native kernels runs.

One set is active per process: the best this CPU supports, capped by the ``PARML_ISA``
environment variable (``generic``, ``avx2``, ``avx512`` or ``neon``), read when parml's kernels
is imported (the package imports this module first). A set the CPU lacks falls back, with a ``RuntimeWarning``, to the best set
under it; an unknown name is a ``ValueError`` that lists the valid ones.
"""
import contextlib
import os
import warnings

from ._kernels import _kernel_sets as _ks

ENV = "PARML_ISA"
NAMES = _ks.NAMES                     # every set parml knows, by id
_X86 = ("avx2", "avx512")
_cap_id = _ks.best()                  # the highest set the tests and benchmarks may choose
_reason = ""


def _apply_env():
    """Choose the process's kernel set from PARML_ISA and the CPU (at import)."""
    global _cap_id, _reason
    raw = os.environ.get(ENV, "")
    value = raw.strip().lower()
    sid, status = _ks.choose(value)
    best = NAMES[_ks.best()]
    if status == "unknown":
        raise ValueError(f"{ENV}={raw!r} names no kernel set; valid names: {', '.join(NAMES)} "
                         "(unset: the best set this CPU supports)")
    if status == "unsupported":
        warnings.warn(f"{ENV}={raw!r}: this CPU or build cannot run the {value} kernels; using "
                      f"{NAMES[sid]} instead", RuntimeWarning, stacklevel=2)
        _reason = f"{ENV}={value} is not supported here; fell back to {NAMES[sid]}"
    elif value:
        _reason = f"capped by {ENV}={value} (best on this CPU: {best})"
    else:
        _reason = f"best set this CPU supports ({ENV} unset)"
    _ks.set_active(sid)
    _cap_id = sid


def kernel_set():
    """Name of the kernel set in use: ``"generic"``, ``"avx2"``, ``"avx512"`` or ``"neon"``."""
    return NAMES[_ks.active()]


def kernel_set_reason():
    """Why that set was chosen (CPU, PARML_ISA), in words."""
    return _reason


def supported_kernel_sets():
    """Names of the sets this process may use, best last: ``generic`` and every set of this
    architecture that the CPU supports, up to the cap PARML_ISA set."""
    cap = NAMES[_cap_id]
    out = ["generic"]
    for sid, name in enumerate(NAMES):
        if name == "generic" or not _ks.supported(sid):
            continue
        if (name in _X86 and cap in _X86 and sid <= _cap_id) or (name == cap == "neon"):
            out.append(name)
    return tuple(out)


def kernel_set_id():
    """Id of the active set (the index the native kernel tables use)."""
    return _ks.active()


@contextlib.contextmanager
def use(name):
    """Run the kernels of set ``name`` inside the block (tests and benchmarks; not thread-safe:
    never switch while another thread runs a kernel)."""
    allowed = supported_kernel_sets()
    if name not in allowed:
        raise ValueError(f"kernel set {name!r} is not available here; available: "
                         f"{', '.join(allowed)}")
    previous = _ks.active()
    _ks.set_active(NAMES.index(name))
    try:
        yield
    finally:
        _ks.set_active(previous)


_apply_env()
