"""Tree snapshots and their renderings, on a fixed tree (exact output)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import proctree
from proctree import State

from ..support.helpers import until_closing


async def _noop() -> None:
    pass


async def _build(root: proctree.Process) -> proctree.Process:
    db = proctree.with_teardown(_noop, parent=root, name="db")
    await trio.sleep(1)
    http = proctree.go(until_closing, parent=db, name="http")
    proctree.go(until_closing, parent=http, name="conn-42")
    side = proctree.with_parent(root, name="metrics")
    side.wait_for(http)
    side.add_child_no_wait(db)
    await trio.sleep(1.5)
    return http


EXPECTED_TEXT = """\
app [RUNNING] root, up 2.5s
├── db [RUNNING] process, up 2.5s
│   └── http [RUNNING] go, up 1.5s
│       └── conn-42 [RUNNING] go, up 1.5s
└── metrics [RUNNING] process, up 1.5s; waits for app/db/http; closes app/db
"""

EXPECTED_DOT = """\
digraph proctree {
  rankdir=TB;
  node [shape=box, style="rounded", fontname="monospace"];
  "app" [label="app\\nRUNNING"];
  "app/db" [label="db\\nRUNNING"];
  "app/db/http" [label="http\\nRUNNING"];
  "app/db/http/conn-42" [label="conn-42\\nRUNNING"];
  "app/metrics" [label="metrics\\nRUNNING"];
  "app" -> "app/db";
  "app" -> "app/metrics";
  "app/db" -> "app/db/http";
  "app/db/http" -> "app/db/http/conn-42";
  "app/metrics" -> "app/db/http" [style=dashed, color=blue, label="waits for"];
  "app/metrics" -> "app/db" [style=dashed, color=gray, label="closes"];
}
"""


async def test_render_text_draws_the_tree_like_pstree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root(name="app") as root:
        await _build(root)
        assert proctree.render_text(proctree.tree(root)) == EXPECTED_TEXT


async def test_render_dot_styles_dag_edges_apart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root(name="app") as root:
        await _build(root)
        assert proctree.render_dot(proctree.tree(root)) == EXPECTED_DOT


async def test_a_snapshot_is_frozen_and_complete(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root(name="app") as root:
        http = await _build(root)
        snap = proctree.tree(root)
        await http.aclose()
        assert snap.children[0].children[0].state is State.RUNNING
        assert [i.path for i in snap.walk()] == [
            "app",
            "app/db",
            "app/db/http",
            "app/db/http/conn-42",
            "app/metrics",
        ]
        assert http.path == "http"  # closed: out of the tree
        later = proctree.tree(root)
        assert [i.path for i in later.walk()] == ["app", "app/db", "app/metrics"]


async def test_colour_marks_states_for_terminals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root(name="app") as root:
        text = proctree.render_text(proctree.tree(root), colour=True)
    assert text == "app [\x1b[32mRUNNING\x1b[0m] root, up 0.0s\n"


async def test_failures_grace_overruns_and_restarts_show(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stubborn(proc: proctree.Process) -> None:
        await trio.sleep_forever()

    async def bad() -> None:
        raise ValueError("no disk")

    stops: list[trio.Event] = []

    async def serve() -> None:
        stops.append(trio.Event())
        await stops[-1].wait()

    async def stop() -> None:
        stops[-1].set()

    async with proctree.open_root(name="app") as root:
        group = proctree.with_parent(root, name="group")
        p = group.go(stubborn, name="stubborn", grace=1)
        failing = proctree.with_teardown(bad, parent=group, name="failing")
        failing.set_teardown(_noop)
        svc = proctree.Service(serve, stop, parent=root, name="svc")
        await svc.start()
        await svc.restart()
        await p.aclose()
        info = proctree.tree(root)
        assert [c.name for c in info.children] == ["group", "svc"]
        assert info.children[1].restarts == 1
        await svc.stop()
    assert p.overran_grace


async def test_a_deep_chain_snapshot_does_not_recurse(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root(name="r") as root:
        prev = root
        for _ in range(3000):
            prev = proctree.with_parent(prev, name="n")
        snap = proctree.tree(root)
        assert sum(1 for _ in snap.walk()) == 3001
        assert proctree.render_text(snap).count("\n") == 3001


async def test_tree_rejects_what_is_not_a_process() -> None:
    with pytest.raises(TypeError, match=r"proctree\.Process"):
        proctree.tree("root")  # type: ignore[arg-type]


async def test_a_snapshot_of_a_wide_tree_is_linear(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root(name="r") as root:
        for _ in range(50_000):
            proctree.with_parent(root, name="n")
        snap = proctree.tree(root)
        assert len(snap.children) == 50_000


async def test_a_root_under_its_own_descendant_keeps_its_name_as_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A close-only cycle through the root is allowed; the path stays finite
    # and a failure below it is still reported once.
    class Boom(Exception):
        pass

    async def fails(proc: proctree.Process) -> None:
        raise Boom

    with pytest.RaisesGroup(Boom):
        async with proctree.open_root(name="top") as root:
            child = proctree.with_parent(root, name="child")
            child.add_child_no_wait(root)
            assert (root.path, child.path) == ("top", "top/child")
            info = proctree.tree(root)
            assert [c.name for c in info.children] == ["child"]
            assert info.children[0].closes == ("top",)
            child.go(fails, name="worker")


async def test_a_close_only_cycle_through_a_background_process_ends_the_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with proctree.open_root():
        stray = proctree.with_parent(proctree.background(), name="stray")
        below = proctree.with_parent(stray, name="below")
        below.add_child_no_wait(stray)  # stray's first link is now below
        assert below.path == "stray/below"
        assert stray.path == "stray"
        await stray.aclose()
