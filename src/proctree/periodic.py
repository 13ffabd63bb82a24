"""Run a function on a schedule (goprocess's ``periodic`` package, on trio).

Each function here returns the *schedule*: a process, child of ``parent``,
whose every call of ``await fn(proc)`` runs in a child process of its own.
Closing the schedule stops it at once and waits for the calls in flight.

================ =============================================== ==========
function         when ``fn`` is called                           calls
================ =============================================== ==========
``every``        ``interval`` after the previous call ended      one by one
``every_go``     ``interval`` after the previous call started    overlap
``tick``         on a fixed grid; ticks while busy are dropped   one by one
``tick_go``      on every tick of a fixed grid                   overlap
``ticker``       on each value of a channel; dropped while busy  one by one
``ticker_go``    on each value of a channel                      overlap
``on_signal``    ``fn(proc, value)`` for each value, in order    one by one
``on_signal_go`` ``fn(proc, value)`` for each value              overlap
================ =============================================== ==========
"""

from ._schedule import every as every
from ._schedule import every_go as every_go
from ._schedule import on_signal as on_signal
from ._schedule import on_signal_go as on_signal_go
from ._schedule import tick as tick
from ._schedule import tick_go as tick_go
from ._schedule import ticker as ticker
from ._schedule import ticker_go as ticker_go

__all__ = [
    "every",
    "every_go",
    "on_signal",
    "on_signal_go",
    "tick",
    "tick_go",
    "ticker",
    "ticker_go",
]
