"""``python -m natvi``: the same as the ``natvi`` command."""

import sys

from natvi.cli import main

if __name__ == "__main__":
    sys.exit(main())
