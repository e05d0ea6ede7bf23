"""Where parml's public C headers are: ``parml.get_include()``, as ``numpy.get_include()``."""
import os

_MARKER = os.path.join("parml", "parml.h")


def get_include():
    """The directory to put on a C compiler's include path (``-I``) so that
    ``#include <parml/parml.h>`` finds parml's C API (docs/c-api.md).

    An installed wheel carries the headers inside the package (``parml/include``); a source
    checkout installed in editable mode uses the repository's ``include`` directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "include"),
                 os.path.normpath(os.path.join(here, os.pardir, os.pardir, "include"))):
        if os.path.isfile(os.path.join(cand, _MARKER)):
            return cand
    raise RuntimeError(f"parml's C headers are missing: no {_MARKER} under {here}/include "
                       "(a broken installation; reinstall parml)")
