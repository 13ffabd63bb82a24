"""Test support: the teardown recorder and the pytest plugin.

What the layers above (and the public face) may use is what this module
exports; see the map at the top of ``docs/design.md``.
"""

from .recorder import TeardownRecorder as TeardownRecorder
from .recorder import wait_for_state as wait_for_state
