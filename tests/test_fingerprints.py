"""The fixed fits of tests/fingerprints.py give the recorded models bit for bit, for every kernel
set this machine has; and each fit gives the same model at 1 and 2 threads.

A machine whose library versions have no recording still checks the thread rule; record with
`python3 tests/fingerprints.py --record` (once per PARML_ISA set) when a change is meant to
alter models, and say why in the commit."""
import json
import os
import subprocess
import sys

import pytest

import parml

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "fingerprints.py")
RECORD = os.path.join(HERE, "data", "fingerprints.json")


def _run(kernel_set):
    # the child fits with the parml this test imported (an installed one, or a source tree on a
    # relative PYTHONPATH, which the child's other working directory would not resolve)
    home = os.path.dirname(os.path.dirname(os.path.abspath(parml.__file__)))
    path = os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PARML_ISA": kernel_set, "PYTHONPATH": path}
    r = subprocess.run([sys.executable, SCRIPT], env=env, capture_output=True, text=True,
                       timeout=600, cwd=HERE)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


@pytest.mark.parametrize("kernel_set", parml.supported_kernel_sets())
def test_fits_match_their_fingerprints(kernel_set):
    res = _run(kernel_set)
    assert res["kernel_set"] == kernel_set
    fp = res["fingerprints"]
    changed = sorted(k for k in fp if k.endswith("-t2") and fp[k] != fp[k[:-1] + "1"])
    assert not changed, f"models differ between 1 and 2 threads: {changed}"
    book = json.load(open(RECORD))
    recorded = book.get(res["environment"], {}).get(kernel_set)
    if recorded is None:
        pytest.skip(f"no fingerprints recorded for {res['environment']} / {kernel_set}; the "
                    "thread rule was checked")
    differ = sorted(k for k in recorded if fp.get(k) != recorded[k])
    assert not differ, f"fitted models changed under kernel set {kernel_set}: {differ}"
    assert set(fp) == set(recorded), sorted(set(fp) ^ set(recorded))
