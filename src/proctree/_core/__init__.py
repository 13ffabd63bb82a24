"""The core layer: the process node, the close driver, roots and snapshots.

What the layers above may use is what this module exports; they import
nothing from ``_core``'s modules directly (a test pins it). See the map at
the top of ``docs/design.md``.
"""

from .checks import check_async_callable as check_async_callable
from .checks import check_grace as check_grace
from .checks import check_name as check_name
from .checks import check_seconds as check_seconds
from .control import cancel_on_closing as cancel_on_closing
from .control import close_by as close_by
from .control import close_reason as close_reason
from .control import current_or_none as current_or_none
from .control import current_process as current_process
from .control import forced_at as forced_at
from .control import forget_on_closing as forget_on_closing
from .control import has_instruments as has_instruments
from .control import instrument_hook as instrument_hook
from .control import is_closing as is_closing
from .control import keeper_of as keeper_of
from .control import kind_of as kind_of
from .control import on_closing as on_closing
from .control import parent_of as parent_of
from .control import release_close as release_close
from .control import runner_of as runner_of
from .control import set_keeper as set_keeper
from .driver import is_cancellation as is_cancellation
from .errors import CycleError as CycleError
from .errors import InvalidStateError as InvalidStateError
from .errors import NoResultError as NoResultError
from .errors import ProctreeError as ProctreeError
from .errors import StartError as StartError
from .errors import StartTimeoutError as StartTimeoutError
from .errors import describe as describe
from .errors import exception_tree as exception_tree
from .errors import join_failures as join_failures
from .errors import leaf_exceptions as leaf_exceptions
from .errors import one_failure as one_failure
from .host import DEFAULT_GRACE as DEFAULT_GRACE
from .host import logger as logger
from .instrument import Instrument as Instrument
from .node import Process as Process
from .node import background as background
from .node import check_process as check_process
from .node import first_parent as first_parent
from .protocols import Keeper as Keeper
from .protocols import Ready as Ready
from .protocols import RunFn as RunFn
from .protocols import Runner as Runner
from .protocols import RunnerObject as RunnerObject
from .reasons import REASONS as REASONS
from .root import host_of as host_of
from .root import open_root as open_root
from .root import with_signals as with_signals
from .snapshot import ProcessInfo as ProcessInfo
from .snapshot import render_dot as render_dot
from .snapshot import render_text as render_text
from .snapshot import tree as tree
from .snapshot import walk as walk
from .spawn import go as go
from .spawn import go_child as go_child
from .spawn import new_process as new_process
from .spawn import resolve_parent as resolve_parent
from .spawn import runner_callable as runner_callable
from .spawn import runner_name as runner_name
from .spawn import with_parent as with_parent
from .spawn import with_teardown as with_teardown
from .startup import launch as launch
from .startup import mark_ready as mark_ready
from .startup import startup_failure as startup_failure
from .state import State as State
from .version import VERSION as VERSION
