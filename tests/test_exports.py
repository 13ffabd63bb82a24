"""The public face: every name resolves, is documented, and classes are final."""

from __future__ import annotations

import enum
import inspect

import pytest

import proctree


@pytest.mark.parametrize("name", proctree.__all__)
def test_every_public_name_resolves_and_has_a_docstring(name: str) -> None:
    obj = getattr(proctree, name)
    if name == "DEFAULT_GRACE":
        assert isinstance(obj, float)
        return
    assert inspect.getdoc(obj), f"proctree.{name} has no docstring"


def test_all_lists_every_public_name_once() -> None:
    assert len(set(proctree.__all__)) == len(proctree.__all__)
    # "@py_..." names come from pytest's assertion rewriting, which pytest
    # applies to the package of any plugin it loads (ours included).
    public = {n for n in vars(proctree) if not n.startswith(("_", "@"))}
    assert public - {"annotations"} <= set(proctree.__all__) | {"_cli", "_demo"}


def test_every_public_method_of_process_has_a_docstring() -> None:
    for name, member in vars(proctree.Process).items():
        if name.startswith("_") or inspect.ismemberdescriptor(member):
            continue  # slots (``name``) are documented in the class body
        assert inspect.getdoc(member), f"Process.{name} has no docstring"


def test_public_classes_are_final() -> None:
    for name in proctree.__all__:
        obj = getattr(proctree, name)
        if obj is proctree.Instrument:
            continue  # a base class, made to be subclassed
        if (
            isinstance(obj, type)
            and not issubclass(obj, BaseException)
            and not issubclass(obj, enum.Enum)
            and not getattr(obj, "_is_protocol", False)
        ):
            assert getattr(obj, "__final__", False), f"proctree.{name} is not @final"


def test_spawn_aliases_are_the_same_functions() -> None:
    assert proctree.spawn is proctree.go
    assert proctree.spawn_child is proctree.go_child
