"""proctree's own tests use its pytest plugin (registered by entry point)
and pytest's pytester to run inner sessions that exercise it."""

pytest_plugins = ["pytester"]
