"""parml.matmul vs numpy's BLAS. Same as `parml bench gemm`; see --help."""
import sys

from parml.benchmarks.gemm import main

if __name__ == "__main__":
    sys.exit(main())
