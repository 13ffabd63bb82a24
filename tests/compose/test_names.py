"""Names of runners and combinators: name= everywhere, short defaults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio

import proctree


async def serve() -> None:
    await trio.sleep_forever()


def part(name: str) -> proctree.Runner:
    return proctree.leaf(serve, name=name)


@pytest.mark.parametrize("combinator", [proctree.sequential, proctree.parallel])
async def test_a_combinator_lists_up_to_three_parts_by_default(
    combinator: Callable[..., proctree.RunnerObject],
) -> None:
    kind = combinator.__name__
    few = combinator(part("db"), part("http"))
    many = combinator(*(part(n) for n in "abcde"))
    assert getattr(few, "name") == f"{kind}[db, http]"  # noqa: B009
    assert getattr(many, "name") == f"{kind}[a, b, c, +2]"  # noqa: B009


def test_a_nested_combinator_shows_by_its_kind_in_a_default_name() -> None:
    inner = proctree.parallel(part("http"), part("periodic_jobs"), part("sup"))
    outer = proctree.sequential(part("db"), part("sidecar"), inner)
    assert getattr(outer, "name") == "sequential[db, sidecar, parallel]"  # noqa: B009
    # The nested one keeps its own list: the tree shows it one level down.
    assert getattr(inner, "name") == "parallel[http, periodic_jobs, sup]"  # noqa: B009


def test_a_named_combinator_shows_by_its_name_in_its_parents() -> None:
    web = proctree.parallel(part("http"), part("grpc"), name="web")
    app = proctree.chain(part("db"), web)
    assert getattr(app, "name") == "chain[db, web]"  # noqa: B009


RunnerMaker = Callable[[str], proctree.RunnerObject]


async def _noop() -> None:
    pass


async def _run(ready: Callable[[], Awaitable[None]]) -> None:
    await ready()


MAKERS: dict[str, RunnerMaker] = {
    "sequential": lambda n: proctree.sequential(part("x"), name=n),
    "chain": lambda n: proctree.chain(part("x"), name=n),
    "parallel": lambda n: proctree.parallel(part("x"), name=n),
    "leaf": lambda n: proctree.leaf(serve, name=n),
    "start_stop": lambda n: proctree.start_stop(_noop, _noop, name=n),
    "nop": lambda n: proctree.nop(name=n),
    "prefixed_error": lambda n: proctree.prefixed_error("db", _run, name=n),
}


@pytest.mark.parametrize("kind", sorted(MAKERS))
async def test_every_runner_takes_a_name_for_its_process(kind: str) -> None:
    runner = MAKERS[kind]("the-name")
    async with proctree.open_root():
        p = proctree.new_process(runner)
        assert p.name == "the-name"
        await p.start()
        assert p.path.endswith("/the-name")
        await p.stop()


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_name_that_is_not_a_str_is_refused(kind: str) -> None:
    with pytest.raises(TypeError, match="name must be a str"):
        MAKERS[kind](42)  # type: ignore[arg-type]


def test_default_names_of_the_simple_runners() -> None:
    assert getattr(proctree.nop(), "name") == "nop"  # noqa: B009
    assert getattr(proctree.leaf(serve), "name") == "serve"  # noqa: B009
    wrapped = proctree.prefixed_error("db", part("pool"))
    assert getattr(wrapped, "name") == "pool"  # noqa: B009


async def test_a_deep_composition_keeps_its_paths_short() -> None:
    async def supervised(ready: Callable[[], Awaitable[None]]) -> None:
        await ready()

    app = proctree.sequential(
        part("db"),
        part("sidecar"),
        proctree.parallel(part("http"), part("periodic_jobs"), supervised),
    )
    async with proctree.open_root(name="app"):
        p = proctree.new_process(app)
        await p.start()
        paths = [info.path for info in proctree.tree(p).walk()]
        await p.stop()
    top = "sequential[db, sidecar, parallel]"
    assert f"{top}/parallel[http, periodic_jobs, supervised]/supervised" in paths
    assert max(len(path) for path in paths) < 100
