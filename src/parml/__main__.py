"""``python -m parml``: the same as the ``parml`` command."""
import sys

from .cli import main

sys.exit(main())
