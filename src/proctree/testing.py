"""Helpers for testing code built on proctree (see also the pytest plugin).

``TeardownRecorder`` records the order in which processes closed;
``wait_for_state`` waits until a process reaches a state.
"""

from ._testing import TeardownRecorder as TeardownRecorder
from ._testing import wait_for_state as wait_for_state

__all__ = ["TeardownRecorder", "wait_for_state"]
