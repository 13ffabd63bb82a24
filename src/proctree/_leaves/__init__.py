"""The leaves layer: runners for what a service serves (TCP, ASGI, gRPC, OS programs).

What the layers above (and the public face) may use is what this module
exports; see the map at the top of ``docs/design.md``.
"""

from .activation import ActivationError as ActivationError
from .activation import systemd_sockets as systemd_sockets
from .asgi import ASGIApp as ASGIApp
from .asgi import ASGIServer as ASGIServer
from .asgi import asgi_server as asgi_server
from .grpc import GRPCServer as GRPCServer
from .grpc import grpc_server as grpc_server
from .os_process import OSProcess as OSProcess
from .os_process import OSProcessError as OSProcessError
from .os_process import ReadyCheck as ReadyCheck
from .os_process import os_process as os_process
from .serving import require as require
from .tcp import ConnectionHandler as ConnectionHandler
from .tcp import TCPServer as TCPServer
from .tcp import tcp_server as tcp_server
