"""The operations layer: the command line, ``proctree run``, systemd, logging.

What the layers above (and the public face) may use is what this module
exports; see the map at the top of ``docs/design.md``.
"""

from .cli import console_main as console_main
from .cli import main as main
from .demo import run_demo as run_demo
from .health import Health as Health
from .health import HealthApp as HealthApp
from .health import health_server as health_server
from .log_format import JSONFormatter as JSONFormatter
from .log_format import ProcessPathFilter as ProcessPathFilter
from .logging_instrument import LoggingInstrument as LoggingInstrument
from .metrics import PrometheusInstrument as PrometheusInstrument
from .otel import OpenTelemetryInstrument as OpenTelemetryInstrument
from .run import TargetError as TargetError
from .run import load_target as load_target
from .run import run_target as run_target
from .systemd import SystemdNotifier as SystemdNotifier
from .timeline import ShutdownSpan as ShutdownSpan
from .timeline import ShutdownTimeline as ShutdownTimeline
from .tree_json import TreeDocumentError as TreeDocumentError
from .tree_json import snapshot_from_document as snapshot_from_document
from .tree_json import tree_document as tree_document
from .tree_page import tree_page_app as tree_page_app
