"""``python -m proctree``: see :mod:`proctree._cli`."""

from ._cli import console_main

console_main()
