"""The compose layer: runners, the dependency combinators and the restartable Service.

What the layers above (and the public face) may use is what this module
exports; see the map at the top of ``docs/design.md``.
"""

from .combinators import chain as chain
from .combinators import parallel as parallel
from .combinators import sequential as sequential
from .runners import AsyncFn as AsyncFn
from .runners import leaf as leaf
from .runners import nop as nop
from .runners import prefixed_error as prefixed_error
from .runners import start_stop as start_stop
from .service import DEFAULT_MAX_ERRORS as DEFAULT_MAX_ERRORS
from .service import Service as Service
from .task_status import from_task_status as from_task_status
from .task_status import startable as startable
