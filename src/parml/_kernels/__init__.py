"""Native kernels (Cython + C). Private: use parml.ops and the estimators. The kernel set they
run is chosen by parml._isa, which the parml package imports first."""
