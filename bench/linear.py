"""Linear models against scikit-learn. Same as `parml bench linear`; see --help."""
import sys

from parml.benchmarks.linear import main

if __name__ == "__main__":
    sys.exit(main())
