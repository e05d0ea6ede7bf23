"""Build of parml's native kernels: the extension list, an OpenMP probe, and the Cython directives.

Environment:
  PARML_REQUIRE_OPENMP=1  fail the build when the compiler has no working OpenMP (CI sets it)
  PARML_DEBUG=1           bounds checking and wraparound back on, -O0 -g
"""
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
DEBUG = os.environ.get("PARML_DEBUG", "") not in ("", "0")
REQUIRE_OPENMP = os.environ.get("PARML_REQUIRE_OPENMP", "") not in ("", "0")

OMP_PROBE = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel num_threads(2) reduction(+:n)
    n += 1;
    printf("%d\n", n);
    return n == 2 ? 0 : 1;
}
"""

# Flag sets to try, in order: GCC and clang with libgomp/libomp, then Apple clang with libomp.
OMP_CANDIDATES = [
    (["-fopenmp"], ["-fopenmp"]),
    (["-Xpreprocessor", "-fopenmp"], ["-lomp"]),
]


def _compiler():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()


def probe_openmp():
    """Compile and run a tiny OpenMP program; return (compile_flags, link_flags) or None.

    With the user's CPPFLAGS/CFLAGS and LDFLAGS, as the extensions are built: that is how a
    runtime outside the compiler's search paths is found (macOS: Homebrew's libomp)."""
    cc = _compiler()
    if shutil.which(cc[0]) is None:
        return None
    env_c = shlex.split(os.environ.get("CPPFLAGS", "")) + shlex.split(os.environ.get("CFLAGS", ""))
    env_l = shlex.split(os.environ.get("LDFLAGS", ""))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        exe = os.path.join(tmp, "probe")
        with open(src, "w") as f:
            f.write(OMP_PROBE)
        for cflags, lflags in OMP_CANDIDATES:
            try:
                subprocess.run(cc + env_c + cflags + [src, "-o", exe] + env_l + lflags, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
                out = subprocess.run([exe], check=True, capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.SubprocessError):
                continue
            if out.stdout.strip() == "2":
                return cflags, lflags
    return None


def openmp_flags():
    found = probe_openmp()
    if found is not None:
        return found
    msg = ("parml: the C compiler has no working OpenMP; building without it. Kernels still run "
           "on parml's own thread pool, but n_threads=None then means ONE thread and "
           "threadpoolctl/OMP_NUM_THREADS cannot see or limit parml. Install libgomp/libomp and "
           "rebuild for the usual defaults.")
    if REQUIRE_OPENMP:
        sys.exit("error: " + msg + " (PARML_REQUIRE_OPENMP=1 makes this fatal)")
    bar = "!" * 100
    print(f"\n{bar}\n{msg}\n{bar}\n", file=sys.stderr)
    return [], []


def write_build_info(cflags, ldflags):
    """src/parml/_build_info.json: the compiler and flags the kernels were built with, so that
    `parml bench c` compiles its C program the same way (it ships in the wheel)."""
    # the compiler's name only: a build's sysroot or cross prefix means nothing where it runs
    info = {"cc": [os.path.basename(_compiler()[0])], "cflags": [f for f in cflags if f != "-g"],
            "ldflags": ldflags, "openmp": bool(ldflags)}
    with open(os.path.join(HERE, "src", "parml", "_build_info.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")


def extensions():
    omp_c, omp_l = openmp_flags()
    opt = ["-O0", "-g"] if DEBUG else ["-O3"]
    # Baseline ISA only: AVX2/AVX-512 code is confined to micro-kernels with target attributes and
    # chosen at run time, so one x86-64 wheel runs on any x86-64 CPU.
    cflags = opt + ["-fno-math-errno", "-Wno-unused-function", "-Wno-unknown-pragmas"] + omp_c
    write_build_info(cflags, omp_l)
    exts = []
    for pyx in sorted(glob.glob(os.path.join("pyx", "parml", "_kernels", "*.pyx"))):
        name = "parml._kernels." + os.path.splitext(os.path.basename(pyx))[0]
        exts.append(Extension(
            name, [pyx],
            include_dirs=[os.path.join(HERE, "include"), np.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
            extra_compile_args=cflags,
            extra_link_args=omp_l,
        ))
    directives = {
        "language_level": 3,
        "boundscheck": DEBUG,
        "wraparound": DEBUG,
        "initializedcheck": DEBUG,
        "cdivision": not DEBUG,
        "embedsignature": True,
    }
    return cythonize(exts, compiler_directives=directives, include_path=["pyx"],
                     build_dir="build/cython")


class build_py_with_headers(build_py):
    """Also installs the public C headers (include/parml/*.h) as parml/include/parml/, where
    parml.get_include() finds them: C programs then compile against the installed package."""

    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "parml", "include", "parml")
        self.mkpath(dest)
        for h in sorted(glob.glob(os.path.join(HERE, "include", "parml", "*.h"))):
            self.copy_file(h, os.path.join(dest, os.path.basename(h)))


setup(ext_modules=extensions(), cmdclass={"build_py": build_py_with_headers})
