"""The package's layering, read from the source: estimator families and parml.dask import only
the lower layer (parml._core, parml._kernels, parml's private top-level modules) and other
families' public names; parml._core imports no family."""
import ast
import os

import pytest

import parml

SRC = os.path.dirname(parml.__file__)
FAMILIES = ("linear_model", "tree", "ensemble", "neural_network", "dask", "serving")


def _imports(path):
    """(line, module, names) of every import in the file, relative ones made absolute."""
    pkg = os.path.relpath(os.path.dirname(path), os.path.dirname(SRC)).replace(os.sep, ".")
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, []
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([mod] if mod else []))
            yield node.lineno, mod, [a.name for a in node.names]


def _files(sub):
    for root, _, names in os.walk(os.path.join(SRC, sub)):
        for n in names:
            if n.endswith(".py"):
                yield os.path.join(root, n)


@pytest.mark.parametrize("family", FAMILIES)
def test_families_import_no_other_familys_privates(family):
    bad = []
    for f in _files(family):
        for line, mod, names in _imports(f):
            parts = mod.split(".")
            if parts[0] != "parml" or len(parts) < 2 or parts[1] not in FAMILIES \
                    or parts[1] == family:
                continue
            private = any(p.startswith("_") for p in parts[2:]) or \
                any(n.startswith("_") for n in names)
            if private:
                bad.append(f"{os.path.relpath(f, SRC)}:{line} imports {mod} {names}")
    assert not bad, "\n".join(bad)


def test_core_imports_no_family():
    bad = [f"{os.path.relpath(f, SRC)}:{line} imports {mod}"
           for f in _files("_core") for line, mod, _ in _imports(f)
           if mod.split(".")[:2] in [["parml", fam] for fam in FAMILIES]]
    assert not bad, "\n".join(bad)
