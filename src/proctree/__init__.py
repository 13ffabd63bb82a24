"""proctree: a tree (DAG) of processes on trio, with ordered, exactly-once teardown.

The public names live here; the code lives in private modules, one
concept each.
"""

from . import periodic as periodic
from . import ratelimit as ratelimit
from . import testing as testing
from ._asgi import ASGIApp as ASGIApp
from ._asgi import ASGIServer as ASGIServer
from ._asgi import asgi_server as asgi_server
from ._bridges import move_on_closing as move_on_closing
from ._bridges import open_child as open_child
from ._bridges import with_deadline as with_deadline
from ._bridges import with_timeout as with_timeout
from ._errors import CycleError as CycleError
from ._errors import InvalidStateError as InvalidStateError
from ._errors import ProctreeError as ProctreeError
from ._errors import StartError as StartError
from ._errors import StartTimeoutError as StartTimeoutError
from ._grpc import GRPCServer as GRPCServer
from ._grpc import grpc_server as grpc_server
from ._instruments import Instrument as Instrument
from ._instruments import LoggingInstrument as LoggingInstrument
from ._policy import DoNotRestart as DoNotRestart
from ._policy import RestartPolicy as RestartPolicy
from ._policy import TerminateTree as TerminateTree
from ._process import DEFAULT_GRACE as DEFAULT_GRACE
from ._process import Process as Process
from ._process import Runner as Runner
from ._process import RunnerObject as RunnerObject
from ._process import background as background
from ._process import go as go
from ._process import go_child as go_child
from ._process import new_process as new_process
from ._process import with_parent as with_parent
from ._process import with_teardown as with_teardown
from ._root import open_root as open_root
from ._root import with_signals as with_signals
from ._runners import chain as chain
from ._runners import leaf as leaf
from ._runners import nop as nop
from ._runners import parallel as parallel
from ._runners import prefixed_error as prefixed_error
from ._runners import sequential as sequential
from ._runners import start_stop as start_stop
from ._service import DEFAULT_MAX_ERRORS as DEFAULT_MAX_ERRORS
from ._service import Service as Service
from ._sqlite_table import RunnerSpec as RunnerSpec
from ._sqlite_table import SqliteTable as SqliteTable
from ._sqlite_table import TableError as TableError
from ._state import State as State
from ._subprocess import OSProcess as OSProcess
from ._subprocess import OSProcessError as OSProcessError
from ._subprocess import ReadyCheck as ReadyCheck
from ._subprocess import os_process as os_process
from ._supervisor import ChildFailed as ChildFailed
from ._supervisor import ChildRestarting as ChildRestarting
from ._supervisor import ChildStarted as ChildStarted
from ._supervisor import ChildStopped as ChildStopped
from ._supervisor import GaveUpError as GaveUpError
from ._supervisor import MemoryTable as MemoryTable
from ._supervisor import NotRunningError as NotRunningError
from ._supervisor import ProcessExistsError as ProcessExistsError
from ._supervisor import ProcessNotFoundError as ProcessNotFoundError
from ._supervisor import RestartsPaused as RestartsPaused
from ._supervisor import RestartsResumed as RestartsResumed
from ._supervisor import Supervisor as Supervisor
from ._supervisor import SupervisorEvent as SupervisorEvent
from ._supervisor import SupervisorGaveUp as SupervisorGaveUp
from ._supervisor import Table as Table
from ._systemd import SystemdNotifier as SystemdNotifier
from ._tcp import ConnectionHandler as ConnectionHandler
from ._tcp import TCPServer as TCPServer
from ._tcp import tcp_server as tcp_server
from ._tree import ProcessInfo as ProcessInfo
from ._tree import render_dot as render_dot
from ._tree import render_text as render_text
from ._tree import tree as tree

spawn = go
"""Alias of :func:`go`."""
spawn_child = go_child
"""Alias of :func:`go_child`."""

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_MAX_ERRORS",
    "ASGIApp",
    "ASGIServer",
    "ChildFailed",
    "ChildRestarting",
    "ChildStarted",
    "ChildStopped",
    "ConnectionHandler",
    "CycleError",
    "DoNotRestart",
    "GRPCServer",
    "GaveUpError",
    "Instrument",
    "InvalidStateError",
    "LoggingInstrument",
    "MemoryTable",
    "NotRunningError",
    "OSProcess",
    "OSProcessError",
    "Process",
    "ProcessExistsError",
    "ProcessInfo",
    "ProcessNotFoundError",
    "ProctreeError",
    "ReadyCheck",
    "RestartPolicy",
    "RestartsPaused",
    "RestartsResumed",
    "Runner",
    "RunnerObject",
    "RunnerSpec",
    "Service",
    "SqliteTable",
    "StartError",
    "StartTimeoutError",
    "State",
    "Supervisor",
    "SupervisorEvent",
    "SupervisorGaveUp",
    "SystemdNotifier",
    "TCPServer",
    "Table",
    "TableError",
    "TerminateTree",
    "asgi_server",
    "background",
    "chain",
    "go",
    "go_child",
    "grpc_server",
    "leaf",
    "move_on_closing",
    "new_process",
    "nop",
    "open_child",
    "open_root",
    "os_process",
    "parallel",
    "periodic",
    "prefixed_error",
    "ratelimit",
    "render_dot",
    "render_text",
    "sequential",
    "spawn",
    "spawn_child",
    "start_stop",
    "tcp_server",
    "testing",
    "tree",
    "with_deadline",
    "with_parent",
    "with_signals",
    "with_teardown",
    "with_timeout",
]
