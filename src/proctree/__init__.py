"""proctree: a tree (DAG) of processes on trio, with ordered, exactly-once teardown.

The public names live here; the code lives in private subpackages, one
per layer (``_core``, ``_compose``, ``_schedule``, ``_supervision``,
``_leaves``, ``_ops``, ``_testing``), each module one concept.
"""

from . import periodic as periodic
from . import ratelimit as ratelimit
from . import testing as testing
from ._compose import DEFAULT_MAX_ERRORS as DEFAULT_MAX_ERRORS
from ._compose import Service as Service
from ._compose import chain as chain
from ._compose import from_task_status as from_task_status
from ._compose import leaf as leaf
from ._compose import nop as nop
from ._compose import parallel as parallel
from ._compose import prefixed_error as prefixed_error
from ._compose import sequential as sequential
from ._compose import start_stop as start_stop
from ._compose import startable as startable
from ._core import DEFAULT_GRACE as DEFAULT_GRACE
from ._core import VERSION as _VERSION
from ._core import CycleError as CycleError
from ._core import Instrument as Instrument
from ._core import InvalidStateError as InvalidStateError
from ._core import NoResultError as NoResultError
from ._core import Process as Process
from ._core import ProcessInfo as ProcessInfo
from ._core import ProctreeError as ProctreeError
from ._core import Runner as Runner
from ._core import RunnerObject as RunnerObject
from ._core import StartError as StartError
from ._core import StartTimeoutError as StartTimeoutError
from ._core import State as State
from ._core import background as background
from ._core import go as go
from ._core import go_child as go_child
from ._core import new_process as new_process
from ._core import open_root as open_root
from ._core import render_dot as render_dot
from ._core import render_text as render_text
from ._core import tree as tree
from ._core import with_parent as with_parent
from ._core import with_signals as with_signals
from ._core import with_teardown as with_teardown
from ._leaves import ActivationError as ActivationError
from ._leaves import ASGIApp as ASGIApp
from ._leaves import ASGIServer as ASGIServer
from ._leaves import ConnectionHandler as ConnectionHandler
from ._leaves import GRPCServer as GRPCServer
from ._leaves import OSProcess as OSProcess
from ._leaves import OSProcessError as OSProcessError
from ._leaves import ReadyCheck as ReadyCheck
from ._leaves import TCPServer as TCPServer
from ._leaves import asgi_server as asgi_server
from ._leaves import grpc_server as grpc_server
from ._leaves import os_process as os_process
from ._leaves import systemd_sockets as systemd_sockets
from ._leaves import tcp_server as tcp_server
from ._ops import Health as Health
from ._ops import HealthApp as HealthApp
from ._ops import JSONFormatter as JSONFormatter
from ._ops import LoggingInstrument as LoggingInstrument
from ._ops import OpenTelemetryInstrument as OpenTelemetryInstrument
from ._ops import ProcessPathFilter as ProcessPathFilter
from ._ops import PrometheusInstrument as PrometheusInstrument
from ._ops import ShutdownSpan as ShutdownSpan
from ._ops import ShutdownTimeline as ShutdownTimeline
from ._ops import SystemdNotifier as SystemdNotifier
from ._ops import TreeDocumentError as TreeDocumentError
from ._ops import health_server as health_server
from ._ops import snapshot_from_document as snapshot_from_document
from ._ops import tree_document as tree_document
from ._ops import tree_page_app as tree_page_app
from ._schedule import move_on_closing as move_on_closing
from ._schedule import open_child as open_child
from ._schedule import with_deadline as with_deadline
from ._schedule import with_timeout as with_timeout
from ._supervision import ChildFailed as ChildFailed
from ._supervision import ChildRestarting as ChildRestarting
from ._supervision import ChildStarted as ChildStarted
from ._supervision import ChildStopped as ChildStopped
from ._supervision import DoNotRestart as DoNotRestart
from ._supervision import GaveUpError as GaveUpError
from ._supervision import Lease as Lease
from ._supervision import LeaseStore as LeaseStore
from ._supervision import LeaseTiming as LeaseTiming
from ._supervision import LeasingTable as LeasingTable
from ._supervision import MemoryTable as MemoryTable
from ._supervision import NotRunningError as NotRunningError
from ._supervision import PostgresTable as PostgresTable
from ._supervision import ProcessExistsError as ProcessExistsError
from ._supervision import ProcessNotFoundError as ProcessNotFoundError
from ._supervision import Renewal as Renewal
from ._supervision import RestartPolicy as RestartPolicy
from ._supervision import RestartsPaused as RestartsPaused
from ._supervision import RestartsResumed as RestartsResumed
from ._supervision import RunnerSpec as RunnerSpec
from ._supervision import SqliteTable as SqliteTable
from ._supervision import Supervisor as Supervisor
from ._supervision import SupervisorEvent as SupervisorEvent
from ._supervision import SupervisorGaveUp as SupervisorGaveUp
from ._supervision import Survey as Survey
from ._supervision import Table as Table
from ._supervision import TableError as TableError
from ._supervision import TerminateTree as TerminateTree
from ._supervision import current_lease as current_lease

__version__ = _VERSION
"""The installed version of proctree (``proctree --version`` prints it)."""

spawn = go
"""Alias of :func:`go`."""
spawn_child = go_child
"""Alias of :func:`go_child`."""

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_MAX_ERRORS",
    "ASGIApp",
    "ASGIServer",
    "ActivationError",
    "ChildFailed",
    "ChildRestarting",
    "ChildStarted",
    "ChildStopped",
    "ConnectionHandler",
    "CycleError",
    "DoNotRestart",
    "GRPCServer",
    "GaveUpError",
    "Health",
    "HealthApp",
    "Instrument",
    "InvalidStateError",
    "JSONFormatter",
    "Lease",
    "LeaseStore",
    "LeaseTiming",
    "LeasingTable",
    "LoggingInstrument",
    "MemoryTable",
    "NoResultError",
    "NotRunningError",
    "OSProcess",
    "OSProcessError",
    "OpenTelemetryInstrument",
    "PostgresTable",
    "Process",
    "ProcessExistsError",
    "ProcessInfo",
    "ProcessNotFoundError",
    "ProcessPathFilter",
    "ProctreeError",
    "PrometheusInstrument",
    "ReadyCheck",
    "Renewal",
    "RestartPolicy",
    "RestartsPaused",
    "RestartsResumed",
    "Runner",
    "RunnerObject",
    "RunnerSpec",
    "Service",
    "ShutdownSpan",
    "ShutdownTimeline",
    "SqliteTable",
    "StartError",
    "StartTimeoutError",
    "State",
    "Supervisor",
    "SupervisorEvent",
    "SupervisorGaveUp",
    "Survey",
    "SystemdNotifier",
    "TCPServer",
    "Table",
    "TableError",
    "TerminateTree",
    "TreeDocumentError",
    "asgi_server",
    "background",
    "chain",
    "current_lease",
    "from_task_status",
    "go",
    "go_child",
    "grpc_server",
    "health_server",
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
    "snapshot_from_document",
    "spawn",
    "spawn_child",
    "start_stop",
    "startable",
    "systemd_sockets",
    "tcp_server",
    "testing",
    "tree",
    "tree_document",
    "tree_page_app",
    "with_deadline",
    "with_parent",
    "with_signals",
    "with_teardown",
    "with_timeout",
]
