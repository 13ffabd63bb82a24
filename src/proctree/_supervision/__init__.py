"""The supervision layer: the Supervisor, restart policies, events and tables.

What the layers above (and the public face) may use is what this module
exports; see the map at the top of ``docs/design.md``.
"""

from .errors import GaveUpError as GaveUpError
from .errors import NotRunningError as NotRunningError
from .errors import ProcessExistsError as ProcessExistsError
from .errors import ProcessNotFoundError as ProcessNotFoundError
from .events import LEVELS as LEVELS
from .events import ChildFailed as ChildFailed
from .events import ChildRestarting as ChildRestarting
from .events import ChildStarted as ChildStarted
from .events import ChildStopped as ChildStopped
from .events import RestartsPaused as RestartsPaused
from .events import RestartsResumed as RestartsResumed
from .events import SupervisorEvent as SupervisorEvent
from .events import SupervisorGaveUp as SupervisorGaveUp
from .leases import Lease as Lease
from .leases import LeaseStore as LeaseStore
from .leases import LeaseTiming as LeaseTiming
from .leases import LeasingTable as LeasingTable
from .leases import Renewal as Renewal
from .leases import Survey as Survey
from .leases import current_lease as current_lease
from .policy import DoNotRestart as DoNotRestart
from .policy import RestartKind as RestartKind
from .policy import RestartPolicy as RestartPolicy
from .policy import Strategy as Strategy
from .policy import TerminateTree as TerminateTree
from .postgres_table import PostgresTable as PostgresTable
from .spec import RunnerSpec as RunnerSpec
from .spec import TableError as TableError
from .sqlite_table import SqliteTable as SqliteTable
from .supervisor import DEFAULT_INTERVAL as DEFAULT_INTERVAL
from .supervisor import DEFAULT_START_TIMEOUT as DEFAULT_START_TIMEOUT
from .supervisor import Supervisor as Supervisor
from .table import MemoryTable as MemoryTable
from .table import Table as Table
from .table import check_key as check_key
