"""``python -m fastprop.bench``: the same as ``python -m fastprop bench``."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
