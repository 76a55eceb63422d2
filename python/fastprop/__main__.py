"""``python -m fastprop``: the command line (:mod:`fastprop.cli`); ``--help`` lists the commands."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
