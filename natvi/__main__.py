"""``python -m natvi``: the same as the ``natvi`` command."""

import sys

try:
    from natvi.cli import main
except ModuleNotFoundError as exc:
    if exc.name != "natvi.models":
        raise
    # natvi.models installs from the checkout's top-level models/ folder: run from the root
    # of a source checkout, ``-m`` finds the checkout's natvi/ first, which lacks it.
    import natvi

    sys.exit(f"natvi: error: python -m natvi imported natvi from a source checkout "
             f"({natvi.__path__[0]}), which has no natvi.models (the checkout's models/ folder "
             f"becomes natvi.models when installed); run the installed natvi command, or "
             f"python -m natvi from outside the checkout")

if __name__ == "__main__":
    sys.exit(main())
