"""proctree: a tree (DAG) of processes on trio, with ordered, exactly-once teardown.

The public names live here; the code lives in private modules, one
concept each.
"""

from ._errors import CycleError as CycleError
from ._errors import InvalidStateError as InvalidStateError
from ._errors import ProctreeError as ProctreeError
from ._process import DEFAULT_GRACE as DEFAULT_GRACE
from ._process import Process as Process
from ._process import background as background
from ._process import go as go
from ._process import go_child as go_child
from ._process import with_parent as with_parent
from ._process import with_teardown as with_teardown
from ._root import open_root as open_root
from ._root import with_signals as with_signals
from ._state import State as State

spawn = go
"""Alias of :func:`go`."""
spawn_child = go_child
"""Alias of :func:`go_child`."""

__all__ = [
    "DEFAULT_GRACE",
    "CycleError",
    "InvalidStateError",
    "Process",
    "ProctreeError",
    "State",
    "background",
    "go",
    "go_child",
    "open_root",
    "spawn",
    "spawn_child",
    "with_parent",
    "with_signals",
    "with_teardown",
]
