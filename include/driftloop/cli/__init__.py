"""The ``driftloop`` command line: what a person runs to set up, feed and inspect the loop.

The top layer, with the demo: it may use both the library and the server. One module per
group of commands (``config``, ``db``, ``stream``, ``batches``, ``drift``, ``models``,
``traffic``, ``ab``, ``promotion``, ``status``, ``demo``); ``app`` puts them together, and
``context`` holds what the commands share (settings, database, registry). A new command goes in
its group's module; a new group is a module plus one line in ``app``.
"""

from driftloop.cli.app import MLFLOW_PATIENCE, app, main

__all__ = ["MLFLOW_PATIENCE", "app", "main"]
