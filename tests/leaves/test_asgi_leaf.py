"""The ASGI leaf on hypercorn's trio worker, with real HTTP requests on 127.0.0.1.

Needs the ``http`` extra (hypercorn); CI installs it, so these tests run
there. Real I/O: trio's real clock, every wait bounded.
"""

from __future__ import annotations

import gc
import warnings
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pytest
import trio

import proctree
from proctree import State

pytest.importorskip("hypercorn")

from hypercorn.config import Config
from hypercorn.utils import LifespanFailureError

from proctree._leaves.asgi import ASGIServer, asgi_server

from .support import http_request

LIMIT = 10

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class App:
    """A small ASGI application that the tests can hold up and watch."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.in_flight = trio.Event()
        self.release = trio.Event()
        self.__name__ = "app"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.log.append("startup")
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.log.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        if path == "/slow":
            self.in_flight.set()
            await self.release.wait()
        elif path == "/forever":
            self.in_flight.set()
            try:
                await trio.sleep_forever()
            finally:
                self.log.append("forever cancelled")
        body = f"hello from {path}".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        self.log.append(f"answered {path}")


def quiet_config() -> Config:
    config = Config()
    config.errorlog = None  # hypercorn logs "Running on ..." to stderr otherwise
    return config


def server_for(app: App, **kwargs: Any) -> ASGIServer:
    return asgi_server(app, bind="127.0.0.1:0", config=quiet_config(), **kwargs)


async def started(server: ASGIServer) -> proctree.Process:
    p = proctree.new_process(server)
    with trio.fail_after(LIMIT):
        await p.start()
    return p


async def stop(proc: proctree.Process, target: proctree.Process) -> None:
    await target.stop()


async def test_an_http_request_is_answered() -> None:
    app = App()
    server = server_for(app)
    async with proctree.open_root():
        p = await started(server)
        assert p.name == "app"
        assert server.port > 0
        assert server.binds == (f"http://127.0.0.1:{server.port}",)
        with trio.fail_after(LIMIT):
            status, headers, body = await http_request(server.port, "/hello")
        assert status == 200
        assert headers["content-type"] == "text/plain"
        assert body == b"hello from /hello"
        await p.stop()
    assert server.binds == ()
    assert app.log == ["startup", "answered /hello", "shutdown"]


async def test_ready_only_after_the_lifespan_startup() -> None:
    app = App()
    server = server_for(app)
    async with proctree.open_root():
        p = await started(server)
        assert app.log == ["startup"]
        await p.stop()


async def test_a_graceful_stop_lets_a_request_in_flight_complete() -> None:
    app = App()
    server = server_for(app)
    responses: list[tuple[int, bytes]] = []

    async def client(proc: proctree.Process, port: int) -> None:
        status, _, body = await http_request(port, "/slow")
        responses.append((status, body))

    async with proctree.open_root() as root:
        p = await started(server)
        port = server.port
        with trio.fail_after(LIMIT):
            request = root.go(client, port)
            await app.in_flight.wait()
            stopping = root.go(stop, p)
            await p.closing.wait()
            # hypercorn stops accepting: a new connection is refused.
            while True:
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                except OSError:
                    break
                await stream.aclose()  # raced the listener's close; try again
                await trio.sleep(0.01)
            assert p.state is State.CLOSING
            app.release.set()
            await request.wait()
            await stopping.wait()
    assert responses == [(200, b"hello from /slow")]
    assert app.log == ["startup", "answered /slow", "shutdown"]
    assert p.state is State.CLOSED
    assert p.error is None


async def test_a_request_still_running_at_the_grace_is_cancelled() -> None:
    app = App()
    server = server_for(app, grace=0.3)
    failures: list[BaseException] = []

    async def client(proc: proctree.Process, port: int) -> None:
        try:
            await http_request(port, "/forever")
        except (OSError, trio.BrokenResourceError, ValueError, IndexError) as exc:
            failures.append(exc)

    async with proctree.open_root() as root:
        p = await started(server)
        with trio.fail_after(LIMIT):
            request = root.go(client, server.port)
            await app.in_flight.wait()
            begin = trio.current_time()
            await p.stop()
            took = trio.current_time() - begin
            await request.wait()
    assert 0.3 <= took < 3
    assert "forever cancelled" in app.log
    assert "answered /forever" not in app.log
    assert p.error is None


async def test_an_app_without_lifespan_support_is_served() -> None:
    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan support, the common minimal way
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    server = asgi_server(bare, bind="127.0.0.1:0", config=quiet_config())
    async with proctree.open_root():
        p = await started(server)
        with trio.fail_after(LIMIT):
            status, _, _ = await http_request(server.port, "/")
        assert status == 204
        await p.stop()
    assert p.error is None


async def test_work_the_app_starts_with_go_is_a_child_of_the_server() -> None:
    log: list[str] = []

    async def background_job(proc: proctree.Process) -> None:
        await proc.closing.wait()
        log.append("job saw the stop")

    async def spawning(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        job = proctree.go(background_job)  # parent=None: the current process
        log.append(f"job under {job_parent(job)}")
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def job_parent(job: proctree.Process) -> str:
        return next(u.name for u in [job._ups] if isinstance(u, proctree.Process))

    server = asgi_server(
        spawning, bind="127.0.0.1:0", config=quiet_config(), name="web"
    )
    async with proctree.open_root():
        p = await started(server)
        with trio.fail_after(LIMIT):
            status, _, _ = await http_request(server.port, "/")
            assert status == 202
            await p.stop()
        log.append(f"web is {p.state.name}")
    assert log == ["job under web", "job saw the stop", "web is CLOSED"]


async def test_a_stopped_asgi_server_is_freed() -> None:
    # hypercorn (0.18) leaves a reference cycle of its own at each shutdown
    # (its ShutdownError group, the frames that caught it and its tasks),
    # bare hypercorn as much as here. Its tasks' contexts name the current
    # process, as every task started under a process does, so the process
    # is freed by the next cyclic collection, not by refcount as the other
    # leaves are.
    server = server_for(App())
    async with proctree.open_root():
        p = await started(server)
        with trio.fail_after(LIMIT):
            await http_request(server.port, "/")
            await p.stop()
    ref = weakref.ref(p)
    del p
    gc.collect()
    assert ref() is None


async def test_binding_a_port_in_use_fails_the_start_not_the_root() -> None:
    first = server_for(App())
    async with proctree.open_root() as root:
        await started(first)
        second = proctree.new_process(
            asgi_server(App(), bind=f"127.0.0.1:{first.port}", config=quiet_config())
        )
        with trio.fail_after(LIMIT), pytest.raises(OSError, match="in use") as info:
            await second.start()
        assert second.state is State.CLOSED
        assert root.state is State.RUNNING
    # hypercorn (0.18) does not close a socket whose bind() failed; the
    # error's traceback keeps it alive. Drop the error and collect it here,
    # where its ResourceWarning is expected, rather than in a later test.
    del second, info
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


async def test_a_failing_lifespan_startup_fails_the_start() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    server = asgi_server(broken, bind="127.0.0.1:0", config=quiet_config())
    async with proctree.open_root() as root:
        p = proctree.new_process(server)
        with (
            trio.fail_after(LIMIT),
            pytest.raises(LifespanFailureError, match="no database"),
        ):
            await p.start()
        assert root.state is State.RUNNING


async def test_the_config_is_copied_never_changed() -> None:
    config = quiet_config()
    config.bind = ["127.0.0.1:0"]
    server = asgi_server(App(), config=config, grace=1)
    async with proctree.open_root():
        p = await started(server)
        await p.stop()
    assert config.graceful_timeout == Config.graceful_timeout
    assert config.bind == ["127.0.0.1:0"]
    assert server.config is not config


async def test_an_asgi_server_runs_in_one_process_at_a_time() -> None:
    server = server_for(App())
    async with proctree.open_root():
        p = await started(server)
        again = proctree.new_process(server)
        with (
            trio.fail_after(LIMIT),
            pytest.raises(proctree.InvalidStateError, match="already running"),
        ):
            await again.start()
        await p.stop()
        p2 = await started(server)
        with trio.fail_after(LIMIT):
            status, _, _ = await http_request(server.port, "/")
        assert status == 200
        await p2.stop()


def test_the_port_is_known_only_while_serving() -> None:
    server = server_for(App())
    with pytest.raises(proctree.InvalidStateError, match="not serving"):
        _ = server.port
    assert server.ports == ()


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="ASGI application"):
        asgi_server("app")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"hypercorn\.config\.Config"):
        asgi_server(App(), config={"bind": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bind"):
        asgi_server(App(), bind=[])
    with pytest.raises(ValueError, match="grace"):
        asgi_server(App(), grace=-1)
