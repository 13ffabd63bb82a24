"""Sphinx configuration of the proctree documentation.

Build it (offline; every warning is an error, every reference must resolve)::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html
    sphinx-build -W --keep-going -n -b doctest docs docs/_build/doctest

The doctest build runs the examples of the tutorial and of the front page.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import sys
from typing import TYPE_CHECKING

from sphinx.pycode import ModuleAnalyzer

import proctree

if TYPE_CHECKING:
    from sphinx.application import Sphinx

# -- Project -----------------------------------------------------------------

project = "proctree"
author = "The proctree developers"
copyright = "The proctree developers"
release = importlib.metadata.version("proctree")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "sphinx.ext.graphviz",
    "sphinxcontrib_trio",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_inventories"]
graphviz_output_format = "svg"
nitpicky = True

# -- HTML --------------------------------------------------------------------

html_theme = "furo"
html_title = f"proctree {release}"

# -- autodoc and napoleon ----------------------------------------------------

# sphinxcontrib-trio (which marks async functions and async context managers)
# extends autodoc's class-based documenters. Sphinx 9 has a new autodoc and
# keeps the class-based one behind this switch; without it the two would be
# mixed, and the functions sphinxcontrib-trio documents would lose
# autodoc_preserve_defaults.
autodoc_use_legacy_class_based = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True  # show grace=DEFAULT_GRACE, not grace=5.0
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# Functions that return an async context manager: sphinxcontrib-trio shows
# them as ``async with open_root(...) as root``; their return annotation
# would then read as the type of ``root``, which it is not, so it is dropped
# from the signature (the docstring's "Returns:" says what ``root`` is).
_ASYNC_WITH = {
    "proctree.open_root",
    "proctree.with_signals",
    "proctree.open_child",
    "proctree.move_on_closing",
}

# Classes that callers never call, shown without a signature: Process has
# no public constructor (autodoc would show its metaclass's refusing
# ``(*args, **kwargs)``), and ``State(value)`` is the enum's lookup by value.
_NO_SIGNATURE = {
    "proctree.Process",
    "proctree.State",
    "proctree.TCPServer",
    "proctree.ASGIServer",
    "proctree.GRPCServer",
    "proctree.OSProcess",
    "proctree.ConnectionHandler",
    "proctree.ASGIApp",
    "proctree.ReadyCheck",
}


def _process_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: object,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str | None, str | None] | None:
    if name in _NO_SIGNATURE:
        return "", None
    if name in _ASYNC_WITH:
        return signature, None
    return None


# A module-level constant such as DEFAULT_GRACE is documented by a string
# after its assignment, in the private module that defines it. autodoc
# looks for that string only in the module it documents the name under,
# ``proctree``, and otherwise shows the docstring of the value's type
# (float's). So for a public constant with no such string in
# proctree/__init__.py, the string is taken from the private module that
# defines the very same object.


def _constant_doc(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: object,
    lines: list[str],
) -> None:
    if what != "data" or not name.startswith("proctree."):
        return
    attr = name.removeprefix("proctree.")
    key = ("", attr)
    if key in ModuleAnalyzer.for_module("proctree").find_attr_docs():
        return
    for info in pkgutil.iter_modules(proctree.__path__, "proctree."):
        if not info.name.startswith("proctree._"):
            continue
        # Only modules ``import proctree`` loaded: the pytest plugin needs
        # pytest, which the docs build does not install.
        module = sys.modules.get(info.name)
        if module is None:
            continue
        if attr not in vars(module) or vars(module)[attr] is not obj:
            continue
        docs = ModuleAnalyzer.for_module(info.name).find_attr_docs()
        if key in docs:
            lines[:] = list(docs[key])
            return


# -- References --------------------------------------------------------------

# Intersphinx, offline. The machines that build these docs have no network,
# so the inventories of Python's and trio's documentation cannot be
# downloaded. Instead _inventories/ holds a small hand-kept inventory of
# each, in Sphinx's plain-text inventory format (version 1: after three
# header lines, one "name type page" line per object, the anchor being the
# name; no comments or blank lines), listing the objects these docs and
# proctree's docstrings refer to. Links still point at the real
# documentation sites. When nitpicky mode reports a new reference to Python
# or trio as missing, add its line to the matching file.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", "_inventories/python.inv"),
    "trio": ("https://trio.readthedocs.io/en/stable", "_inventories/trio.inv"),
}

# Names that no page documents and no inventory can resolve. Only typing
# artifacts belong here, never a name of proctree's API:
# ``_Ts`` is the TypeVarTuple behind ``*args: *_Ts`` in the signatures of
# go(), go_child(), Process.go() and RateLimiter.limited_go() and .go();
# ``_T`` is the type of the values periodic.on_signal() passes to fn, and
# what a go() function returns (go() gives a ``Process[_T]``); ``R_co`` is
# the type parameter of Process (what Process.result() returns).
nitpick_ignore = [
    ("py:class", "_Ts"),
    ("py:class", "_T"),
    ("py:class", "proctree._core.results.R_co"),
    # SqliteTable's recursive alias of what JSON can hold: autodoc shows its
    # name in signatures, and no page can document a type alias's target.
    ("py:class", "JSON"),
    # The optional server leaves take objects of hypercorn and grpcio, whose
    # documentation publishes no inventory these offline builds could use.
    ("py:class", "hypercorn.config.Config"),
    ("py:class", "grpc.Server"),
    ("py:class", "grpc.ServerCredentials"),
    ("py:class", "proctree._schedule.periodic._T"),
    # The metrics instruments take objects of prometheus_client and of the
    # OpenTelemetry API, which publish no inventory offline builds can use.
    ("py:class", "CollectorRegistry"),
    ("py:class", "prometheus_client.registry.CollectorRegistry"),
    ("py:class", "MeterProvider"),
    ("py:class", "TracerProvider"),
    ("py:class", "opentelemetry.metrics.MeterProvider"),
    ("py:class", "opentelemetry.trace.TracerProvider"),
    # The offline Python inventory here is a small one without the socket module.
    ("py:class", "socket.socket"),
]


def setup(app: Sphinx) -> None:
    app.connect("autodoc-process-signature", _process_signature)
    # Before napoleon (priority 500), which must see the right docstring.
    app.connect("autodoc-process-docstring", _constant_doc, priority=400)
