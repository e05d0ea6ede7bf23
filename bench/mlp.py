"""MLP training against scikit-learn and PyTorch. Same as `parml bench mlp`; see --help."""
import sys

from parml.benchmarks.mlp import main

if __name__ == "__main__":
    sys.exit(main())
