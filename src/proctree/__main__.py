"""``python -m proctree``: see :mod:`proctree._ops.cli`."""

from ._ops import console_main

if __name__ == "__main__":
    console_main()
