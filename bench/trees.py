"""Trees against scikit-learn, LightGBM and XGBoost. Same as `parml bench trees`; see --help."""
import sys

from parml.benchmarks.trees import main

if __name__ == "__main__":
    sys.exit(main())
