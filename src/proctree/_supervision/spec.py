"""What a durable table stores for a key: a runner spec, and the table error.

:class:`RunnerSpec` (an import path and JSON arguments) is what
:class:`~proctree.SqliteTable` and :class:`~proctree.PostgresTable` keep per
key; :class:`TableError` is what both raise when the store cannot be read
or written.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import final

import attrs

from .._core import ProctreeError, Runner, runner_callable

__all__ = ["JSON", "RunnerSpec", "TableError", "check_spec"]

JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]


class TableError(ProctreeError):
    """A table could not be read or written (corrupt, locked, bad spec).

    Nothing already committed is lost: a failed write changes nothing.
    """


@final
@attrs.frozen
class RunnerSpec:
    """How to build a runner: an import path and JSON arguments.

    ``target`` is ``"package.module:attribute"``. If ``args`` is a dict the
    runner is ``attribute(**args)``, if a list ``attribute(*args)``; with
    None, ``attribute`` itself is the runner.
    """

    target: str
    """``"package.module:attribute"``."""
    args: JSON = None
    """The JSON arguments (a dict, a list, or None)."""

    def build(self) -> Runner:
        """Import ``target`` and build the runner.

        Raises:
            TableError: the target cannot be imported, or what it builds is
                not a runner.
        """
        module_name, _, attr = self.target.partition(":")
        try:
            obj: object = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise TableError(
                f"runner spec {self.target!r} cannot be imported ({exc}); "
                "give 'package.module:attribute'"
            ) from exc
        if isinstance(self.args, dict):
            obj = _call(obj, self.target)(**self.args)
        elif isinstance(self.args, list):
            obj = _call(obj, self.target)(*self.args)
        try:
            runner_callable(obj, "table")
        except TypeError as exc:
            raise TableError(f"runner spec {self.target!r}: {exc}") from exc
        return obj  # type: ignore[return-value]


def _call(obj: object, target: str) -> Callable[..., object]:
    if not callable(obj):
        raise TableError(f"runner spec {target!r} has args but is not callable")
    return obj


def check_spec(target: object, args: object, what: str) -> str:
    """``args`` as JSON text, once ``target`` and ``args`` are checked.

    Raises:
        TypeError: ``target`` is not ``"package.module:attribute"`` or
            ``args`` is not JSON (a dict, a list, or None).
    """
    if not isinstance(target, str) or ":" not in target:
        raise TypeError(
            f"{what}: target must be 'package.module:attribute', got {target!r}"
        )
    if args is not None and not isinstance(args, dict | list):
        raise TypeError(
            f"{what}: args must be a JSON dict, a JSON list or None, got {args!r}"
        )
    try:
        return json.dumps(args, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what}: args must be JSON ({exc})") from None
