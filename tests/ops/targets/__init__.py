"""Modules that ``proctree run`` imports in the command-line tests."""
