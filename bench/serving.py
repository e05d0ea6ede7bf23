"""Serving throughput and worker memory. Same as `parml bench serving`; see --help."""
import sys

from parml.benchmarks.serving import main

if __name__ == "__main__":
    sys.exit(main())
