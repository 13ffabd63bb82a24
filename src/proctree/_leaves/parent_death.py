"""Children that die with their program: Linux's parent-death signal.

``os_process`` children run in a session of their own, so a ``kill -9`` of
the program would leave them running, reparented to PID 1. On Linux each
child asks the kernel, between fork and exec, for SIGKILL when its parent
dies (``prctl(PR_SET_PDEATHSIG)``); the setting survives exec. See
``docs/design-leaves.md`` (section 10.6) for why this and not a subreaper.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import Final

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG: Final = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return None
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL: Final = _load_prctl()


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when we die.

    Made just before each spawn (it remembers our pid). The child checks,
    once the signal is armed, that its parent is still the one that forked
    it: if we died in between, it exits at once instead of running
    orphaned. Returns None where the kernel has no such signal (not Linux).

    The function runs in the child between fork and exec, so it does the
    least it can: one foreign call resolved beforehand, no allocation that
    needs a lock another thread could hold.
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()
    kill = int(signal.SIGKILL)

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return arm
