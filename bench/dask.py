"""parml.dask against local parml on a 2-worker LocalCluster. Same as `parml bench dask`; see --help."""
import os
import sys

# this file is named dask.py: drop its folder from the path so `import dask` finds the library
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from parml.benchmarks.dask import main

if __name__ == "__main__":
    sys.exit(main())
