"""The probes, asked by a real HTTP client (httpx) on a real listening socket."""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import trio
import trio.testing

import proctree

from ..leaves.support import no_leaks

Ready = Callable[[], Awaitable[None]]


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


async def _serve(
    nursery: trio.Nursery,
    health: proctree.Health,
    metrics: proctree.PrometheusInstrument | None = None,
    mounts: dict[str, proctree.ASGIApp] | None = None,
) -> tuple[proctree.ASGIServer, trio.Event]:
    """The health server in a root of its own, outside the tree it watches."""
    server = proctree.health_server(
        health, bind="127.0.0.1:0", metrics=metrics, mounts=mounts
    )
    up, done = trio.Event(), trio.Event()

    async def host() -> None:
        async with proctree.open_root(name="probes") as root:
            await proctree.new_process(server, parent=root).start()
            up.set()
            await done.wait()

    nursery.start_soon(host)
    await up.wait()
    return server, done


async def _get(port: int, path: str, method: str = "GET") -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.request(method, f"http://127.0.0.1:{port}{path}")


async def test_probes_follow_startup_then_stop() -> None:
    health = proctree.Health()
    go_on = trio.Event()

    async def slow(ready: Ready) -> None:
        await go_on.wait()
        await ready()

    async with trio.open_nursery() as nursery:
        server, done = await _serve(nursery, health)
        port = server.port
        async with proctree.open_root(name="app", instruments=[health]) as root:
            app = proctree.new_process(slow, parent=root)
            nursery.start_soon(app.start)
            while app.state is not proctree.State.STARTING:
                await trio.sleep(0.01)
            live, startup, ready = (
                await _get(port, "/livez"),
                await _get(port, "/startupz"),
                await _get(port, "/readyz"),
            )
            assert (live.status_code, live.text) == (200, "ok\n")
            assert (startup.status_code, startup.text) == (
                503,
                "starting: 1 runner not ready yet\n",
            )
            assert ready.status_code == 503
            assert ready.text.startswith("starting")
            go_on.set()
            while app.state is not proctree.State.RUNNING:
                await trio.sleep(0.01)
            assert (await _get(port, "/startupz")).status_code == 200
            answer = await _get(port, "/readyz")
            assert (answer.status_code, answer.text) == (200, "ready\n")
            assert answer.headers["content-type"].startswith("text/plain")
            with trio.move_on_after(0):
                await root.aclose()
            answer = await _get(port, "/readyz")
            assert (answer.status_code, answer.text) == (503, "stopping\n")
            assert (await _get(port, "/startupz")).status_code == 200
        done.set()


async def test_readyz_turns_503_at_once_on_the_first_signal_of_a_drain() -> None:
    health = proctree.Health()
    async with trio.open_nursery() as nursery:
        server, done = await _serve(nursery, health)
        async with proctree.with_signals(
            signal.SIGTERM, drain=3600, instruments=[health]
        ) as root:

            async def serve(ready: Ready) -> None:
                await ready()

            app = proctree.new_process(serve, parent=root)
            await app.start()
            assert (await _get(server.port, "/readyz")).status_code == 200
            os.kill(os.getpid(), signal.SIGTERM)
            while health.is_ready:
                await trio.sleep(0.01)
            answer = await _get(server.port, "/readyz")
            assert (answer.status_code, answer.text) == (503, "draining\n")
            assert app.state is proctree.State.RUNNING  # still serving
            assert (await _get(server.port, "/livez")).status_code == 200
            await root.aclose()
        done.set()


async def test_a_health_server_inside_one_combinator_with_the_app() -> None:
    health = proctree.Health()
    go_on = trio.Event()

    async def slow(ready: Ready) -> None:
        await go_on.wait()
        await ready()

    server = proctree.health_server(health, bind="127.0.0.1:0")
    async with proctree.open_root(instruments=[health]) as root:
        both = proctree.new_process(proctree.sequential(server, slow), parent=root)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(both.start)
            while not server.binds:
                await trio.sleep(0.01)
            assert (await _get(server.port, "/startupz")).status_code == 503
            go_on.set()
        assert (await _get(server.port, "/startupz")).status_code == 200
        await both.stop()


async def test_metrics_are_served_in_prometheus_text_format() -> None:
    health, metrics = proctree.Health(), proctree.PrometheusInstrument()
    async with trio.open_nursery() as nursery:
        server, done = await _serve(nursery, health, metrics)
        async with proctree.open_root(instruments=[health, metrics]) as root:
            root.go(_idle)
            answer = await _get(server.port, "/metrics")
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/plain; version=")
            assert 'proctree_processes{state="running"} 2.0' in answer.text
            assert "proctree_process_starts_total 1.0" in answer.text
        done.set()


async def _idle(proc: proctree.Process) -> None:
    await proc.closing.wait()


async def test_metrics_without_an_instrument_and_unknown_paths_are_404() -> None:
    health = proctree.Health()
    async with trio.open_nursery() as nursery:
        server, done = await _serve(nursery, health)
        assert (await _get(server.port, "/metrics")).status_code == 404
        assert (await _get(server.port, "/nope")).status_code == 404
        answer = await _get(server.port, "/readyz", method="POST")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET, HEAD"
        head = await _get(server.port, "/livez", method="HEAD")
        assert (head.status_code, head.content) == (200, b"")
        done.set()


async def test_a_mounted_app_gets_its_prefix_as_root_path() -> None:
    seen: list[tuple[str, str]] = []

    async def tree_page(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["root_path"], scope["path"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tree"})

    health = proctree.Health()
    async with trio.open_nursery() as nursery:
        server, done = await _serve(nursery, health, mounts={"/tree": tree_page})
        bare = await _get(server.port, "/tree")
        assert (bare.status_code, bare.headers["location"]) == (308, "/tree/")
        assert (await _get(server.port, "/tree/")).text == "tree"
        assert (await _get(server.port, "/tree/app/http")).text == "tree"
        assert (await _get(server.port, "/treehouse")).status_code == 404
        done.set()
    assert seen == [("/tree", "/"), ("/tree", "/app/http")]


def test_bad_arguments_are_refused_at_the_call() -> None:
    health = proctree.Health()
    with pytest.raises(TypeError, match=r"proctree\.Health"):
        proctree.health_server(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="PrometheusInstrument"):
        proctree.health_server(health, metrics=object())  # type: ignore[arg-type]
    app = proctree.HealthApp(health)
    for prefix in ("tree", "/tree/", "/readyz"):
        with pytest.raises(ValueError, match="mount"):
            app.mount(prefix, _idle_app)
    app.mount("/tree", _idle_app)
    with pytest.raises(ValueError, match="already served"):
        app.mount("/tree", _idle_app)


async def _idle_app(scope: Any, receive: Any, send: Any) -> None:
    pass
