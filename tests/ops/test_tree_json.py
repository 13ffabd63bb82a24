"""The tree document: a faithful, versioned JSON form of a snapshot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import proctree
from proctree._ops.tree_json import (
    CLOSED_FIELDS,
    PROCESS_FIELDS,
    SCHEMA,
    ClosedEntry,
    TreeDocumentError,
    render_document,
    snapshot_from_document,
    tree_document,
)

from ..support.helpers import until_closing

DOCS = Path(__file__).parents[2] / "docs" / "tree-json.md"

# A tree shape: for each new process, the index of its parent among those
# made before it (the root is 0).
shapes = st.lists(st.integers(min_value=0, max_value=10**6), max_size=25).map(
    lambda picks: [pick % (i + 1) for i, pick in enumerate(picks)]
)


async def _snapshot(shape: list[int]) -> proctree.ProcessInfo:
    async with proctree.open_root(name="top") as root:
        made = [root]
        for i, parent in enumerate(shape):
            if i % 3 == 0:
                made.append(made[parent].go(until_closing, name=f"g{i}"))
            else:
                made.append(proctree.with_parent(made[parent], name=f"p{i % 4}"))
        if len(made) > 2:
            made[1].wait_for(made[-1])  # made later: never one it waits on
        await trio.testing.wait_all_tasks_blocked()
        return proctree.tree(root)


@settings(max_examples=40, deadline=None)
@given(shapes)
def test_a_document_gives_back_the_snapshot_it_was_made_from(shape: list[int]) -> None:
    snapshot = trio.run(_snapshot, shape)
    doc = tree_document(snapshot, now=0.0)
    again = snapshot_from_document(json.loads(json.dumps(doc)))
    assert again == snapshot


@settings(max_examples=20, deadline=None)
@given(shapes)
def test_processes_are_listed_depth_first_each_after_its_parent(
    shape: list[int],
) -> None:
    doc = tree_document(trio.run(_snapshot, shape), now=0.0)
    entries = doc["processes"]
    assert [e["id"] for e in entries] == list(range(len(entries)))
    assert entries[0]["parent"] is None
    assert all(e["parent"] < e["id"] for e in entries[1:])
    assert len(entries) == len(shape) + 1


def test_every_entry_has_the_documented_fields() -> None:
    async def main() -> dict[str, object]:
        async with proctree.open_root(name="app") as root:
            root.go(until_closing, name="worker")
            return tree_document(
                proctree.tree(root),
                program={"pid": 1},
                closed=[
                    ClosedEntry("old", "app/old", 0.0, 1.0, "requested", None, False)
                ],
            )

    doc = trio.run(main)
    assert doc["schema"] == SCHEMA == "proctree.tree/1"
    assert set(doc) == {"schema", "program", "processes", "recently_closed"}
    for entry in doc["processes"]:  # type: ignore[attr-defined]
        assert tuple(entry) == PROCESS_FIELDS
    for entry in doc["recently_closed"]:  # type: ignore[attr-defined]
        assert tuple(entry) == CLOSED_FIELDS


def _documented(section: str) -> list[str]:
    text = DOCS.read_text()
    part = text.split(f"<!-- fields: {section} -->", 1)[1].split("<!-- end -->", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", part, flags=re.MULTILINE)


def test_the_schema_page_documents_exactly_the_fields() -> None:
    assert tuple(_documented("processes")) == PROCESS_FIELDS
    assert tuple(_documented("recently_closed")) == CLOSED_FIELDS
    assert SCHEMA in DOCS.read_text()


def _doc(**changes: object) -> dict[str, object]:
    entry = {
        "id": 0,
        "parent": None,
        "name": "a",
        "state": "RUNNING",
        "kind": "root",
        "uptime": 1.0,
        "restarts": 0,
        "key": None,
        "close_reason": None,
        "error": None,
        "overran_grace": False,
        "waits_for": [],
        "closes": [],
    }
    doc: dict[str, object] = {"schema": SCHEMA, "processes": [entry]}
    for name, value in changes.items():
        if name in entry:
            entry[name] = value
        else:
            doc[name] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "must be a JSON object"),
        (_doc(schema="something/1"), "not a proctree tree document"),
        (_doc(schema="proctree.tree/2"), "use the same proctree version"),
        (_doc(processes=[]), "non-empty 'processes'"),
        (_doc(state="ASLEEP"), "is not a state"),
        (_doc(name=3), "name is missing or of the wrong type"),
        (_doc(uptime=True), "uptime is missing or of the wrong type"),
        (_doc(error=5), "error must be a string or null"),
    ],
)
def test_a_bad_document_is_a_clear_error(doc: object, message: str) -> None:
    with pytest.raises(TreeDocumentError, match=re.escape(message)):
        snapshot_from_document(doc)  # type: ignore[arg-type]


def test_a_later_minor_version_is_read() -> None:
    assert snapshot_from_document(_doc(schema="proctree.tree/1.3")).name == "a"


def test_a_parent_must_come_before_its_child() -> None:
    doc = _doc()
    doc["processes"] = [
        *doc["processes"],
        {**doc["processes"][0], "id": 1, "parent": 5},
    ]  # type: ignore[list-item]
    with pytest.raises(TreeDocumentError, match="id of an earlier entry"):
        snapshot_from_document(doc)


def test_the_text_view_lists_the_processes_closed_lately() -> None:
    doc = _doc(
        recently_closed=[
            {
                "name": "job",
                "path": "a/job",
                "closed_ago": 2.0,
                "lifetime": 5.0,
                "close_reason": "requested",
                "error": "ValueError: x",
                "overran_grace": True,
            }
        ]
    )
    text = render_document(doc, "text")
    assert text.splitlines() == [
        "a [RUNNING] root, up 1.0s",
        "recently closed (1):",
        "  a/job closed 2.0s ago (requested); overran grace; failed: ValueError: x",
    ]
    assert render_document(doc, "dot").startswith("digraph proctree {")
    with pytest.raises(ValueError, match="'text' or 'dot'"):
        render_document(doc, "html")


def test_the_example_document_of_the_schema_page_is_read() -> None:
    example = DOCS.read_text().split("```json\n", 1)[1].split("```", 1)[0]
    snapshot = snapshot_from_document(json.loads(example))
    assert [info.path for info in snapshot.walk()] == ["proctree", "proctree/app"]
    assert "conn-7" in render_document(json.loads(example), "text")
