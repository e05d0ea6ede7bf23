"""parml.add vs numpy.add. Same as `parml bench add`; see --help."""
import sys

from parml.benchmarks.elementwise import main

if __name__ == "__main__":
    sys.exit(main())
