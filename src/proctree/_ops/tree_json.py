"""The tree as JSON: one versioned document that every view is built from.

``proctree tree --json`` prints it, the control socket sends it, the live
page draws it, and the text and DOT views are made from it (through
:func:`snapshot_from_document`). The schema is documented in
``docs/tree-json.md``; a change that removes or renames a field bumps the
major version in :data:`SCHEMA`, a new field does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, cast, final

import attrs
import trio

from .._core import ProcessInfo, ProctreeError, State, render_dot, render_text

__all__ = [
    "CLOSED_FIELDS",
    "PROCESS_FIELDS",
    "SCHEMA",
    "ClosedEntry",
    "TreeDocumentError",
    "render_document",
    "snapshot_from_document",
    "tree_document",
]

SCHEMA: Final = "proctree.tree/1"
"""The schema name and major version every document carries."""

PROCESS_FIELDS: Final = (
    "id",
    "parent",
    "name",
    "state",
    "kind",
    "uptime",
    "restarts",
    "key",
    "close_reason",
    "error",
    "overran_grace",
    "waits_for",
    "closes",
)
"""The keys of each entry of ``processes``, in the documented order."""

CLOSED_FIELDS: Final = (
    "name",
    "path",
    "closed_ago",
    "lifetime",
    "close_reason",
    "error",
    "overran_grace",
)
"""The keys of each entry of ``recently_closed``."""


class TreeDocumentError(ProctreeError):
    """A tree document is not one this proctree can read; the message says why."""


@final
@attrs.frozen
class ClosedEntry:
    """A process that closed a short while ago, as the live views show it."""

    name: str
    path: str
    closed_at: float
    """trio's clock when it became CLOSED."""
    lifetime: float
    """Seconds from its start to CLOSED."""
    close_reason: str | None
    error: str | None
    overran_grace: bool


def tree_document(
    snapshot: ProcessInfo,
    *,
    now: float | None = None,
    program: Mapping[str, object] | None = None,
    closed: Iterable[Any] = (),
) -> dict[str, Any]:
    """The JSON document (a dict of plain values) of a tree snapshot.

    Args:
        snapshot: what :func:`proctree.tree` returned.
        now: trio's clock when the snapshot was taken (for ``closed_ago``);
            by default, now (then it must be called from trio).
        program: facts about the program (``pid``, ``target``, ...), put
            under the document's ``program`` key.
        closed: processes that closed a short while ago, oldest first
            (what ``proctree run`` keeps of each close).

    Returns:
        A dict ready for ``json.dumps``: ``processes`` lists every process
        depth first, the top one first, each pointing at its parent's id.
    """
    if now is None:
        now = trio.current_time()
    processes: list[dict[str, Any]] = []
    # (info, parent id); iterative, as trees may be 100,000 deep.
    stack: list[tuple[ProcessInfo, int | None]] = [(snapshot, None)]
    while stack:
        info, parent = stack.pop()
        me = len(processes)
        processes.append(
            {
                "id": me,
                "parent": parent,
                "name": info.name,
                "state": info.state.name,
                "kind": info.kind,
                "uptime": info.uptime,
                "restarts": info.restarts,
                "key": info.key,
                "close_reason": info.close_reason,
                "error": info.error,
                "overran_grace": info.overran_grace,
                "waits_for": list(info.waits_for),
                "closes": list(info.closes),
            }
        )
        stack.extend((child, me) for child in reversed(info.children))
    return {
        "schema": SCHEMA,
        "program": dict(program or {}),
        "processes": processes,
        "recently_closed": [
            {
                "name": entry.name,
                "path": entry.path,
                "closed_ago": max(0.0, now - entry.closed_at),
                "lifetime": entry.lifetime,
                "close_reason": entry.close_reason,
                "error": entry.error,
                "overran_grace": entry.overran_grace,
            }
            for entry in closed
        ],
    }


def _require(doc: object, what: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise TreeDocumentError(
            f"{what} must be a JSON object, got {type(doc).__name__}"
        )
    return cast("Mapping[str, Any]", doc)


def check_schema(doc: Mapping[str, Any]) -> None:
    """Raise :class:`TreeDocumentError` unless ``doc`` is of a schema this reads."""
    schema = doc.get("schema")
    if not isinstance(schema, str) or not schema.startswith("proctree.tree/"):
        raise TreeDocumentError(
            f"not a proctree tree document (its schema is {schema!r}, "
            f"expected {SCHEMA!r})"
        )
    if schema.split("/", 1)[1].split(".", 1)[0] != SCHEMA.split("/", 1)[1]:
        raise TreeDocumentError(
            f"the program speaks {schema!r} and this proctree reads {SCHEMA!r}: "
            "use the same proctree version on both sides"
        )


def snapshot_from_document(doc: Mapping[str, Any]) -> ProcessInfo:
    """Rebuild the :class:`~proctree.ProcessInfo` tree a document describes.

    The inverse of :func:`tree_document` for the ``processes`` part.

    Raises:
        TreeDocumentError: the document is not a tree document of a schema this
            version reads, or an entry is malformed.
    """
    _require(doc, "a tree document")
    check_schema(doc)
    found = doc.get("processes")
    if not isinstance(found, Sequence) or not found:
        raise TreeDocumentError("a tree document needs a non-empty 'processes' list")
    entries = cast("Sequence[object]", found)
    paths: list[str] = []
    kids: list[list[int]] = [[] for _ in entries]
    for i, raw in enumerate(entries):
        entry = _require(raw, f"processes[{i}]")
        parent = entry.get("parent")
        name = _field(entry, i, "name", str)
        if parent is None:
            if i != 0:
                raise TreeDocumentError(
                    f"processes[{i}] has no parent but is not first"
                )
            paths.append(name)
        elif isinstance(parent, int) and 0 <= parent < i:
            paths.append(f"{paths[parent]}/{name}")
            kids[parent].append(i)
        else:
            raise TreeDocumentError(
                f"processes[{i}].parent must be the id of an earlier entry, "
                f"got {parent!r}"
            )
    infos: list[ProcessInfo | None] = [None] * len(entries)
    for i in range(len(entries) - 1, -1, -1):
        entry = _require(entries[i], f"processes[{i}]")
        try:
            state = State[_field(entry, i, "state", str)]
        except KeyError:
            raise TreeDocumentError(
                f"processes[{i}].state is not a state: {entry['state']!r}"
            ) from None
        children = tuple(infos[k] for k in kids[i])
        infos[i] = ProcessInfo(
            name=entry["name"],
            path=paths[i],
            state=state,
            kind=_field(entry, i, "kind", str),
            uptime=float(_field(entry, i, "uptime", (int, float))),
            children=children,  # type: ignore[arg-type]
            waits_for=tuple(_field(entry, i, "waits_for", list)),
            closes=tuple(_field(entry, i, "closes", list)),
            restarts=_field(entry, i, "restarts", int),
            error=_optional(entry, i, "error"),
            overran_grace=bool(entry.get("overran_grace", False)),
            key=_optional(entry, i, "key"),
            close_reason=_optional(entry, i, "close_reason"),
        )
        for k in kids[i]:
            infos[k] = None  # their parent holds them now
    top = infos[0]
    assert top is not None
    return top


def _field(entry: Mapping[str, Any], i: int, name: str, kind: Any) -> Any:
    value = entry.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TreeDocumentError(
            f"processes[{i}].{name} is missing or of the wrong type"
        )
    return value


def _optional(entry: Mapping[str, Any], i: int, name: str) -> str | None:
    value = entry.get(name)
    if value is not None and not isinstance(value, str):
        raise TreeDocumentError(f"processes[{i}].{name} must be a string or null")
    return value


def render_document(doc: Mapping[str, Any], view: str, *, colour: bool = False) -> str:
    """Draw a tree document as ``"text"`` (like pstree) or ``"dot"`` (Graphviz).

    The text view ends with the processes that closed a short while ago.

    Raises:
        TreeDocumentError: the document cannot be read.
        ValueError: ``view`` is neither ``"text"`` nor ``"dot"``.
    """
    snapshot = snapshot_from_document(doc)
    if view == "dot":
        return render_dot(snapshot)
    if view != "text":
        raise ValueError(f"view must be 'text' or 'dot', got {view!r}")
    out = render_text(snapshot, colour=colour)
    closed: list[Mapping[str, Any]] = doc.get("recently_closed") or []
    if closed:
        lines = [f"recently closed ({len(closed)}):"]
        for entry in closed:
            parts = [
                f"  {entry.get('path')} closed {float(entry.get('closed_ago', 0)):.1f}s"
                f" ago ({entry.get('close_reason') or 'unknown'})"
            ]
            if entry.get("overran_grace"):
                parts.append("overran grace")
            if entry.get("error"):
                parts.append(f"failed: {entry['error']}")
            lines.append("; ".join(parts))
        out += "\n".join(lines) + "\n"
    return out
