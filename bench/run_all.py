"""Run every benchmark area in turn (never two at once). Same as `parml bench all`."""
import sys

from parml.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "all", *sys.argv[1:]]))
