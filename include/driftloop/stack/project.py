"""Where the project's folders are, for code that also runs from an installed wheel.

A wheel carries the ``driftloop`` and ``serving`` packages and the data files they read
(``serving/gunicorn.conf.py``, the Alembic scripts), but not the project's other folders:
``dags/`` and ``plugins/`` (Airflow reads them as folders, not as packages) and ``deploy/``
(the compose stack's configs, ``deploy/nginx/proxy.conf`` among them). Code that needs one of
those looks for a checkout here and, when there is none, says which folder it needs and every
place it looked, instead of failing on a path next to ``site-packages``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from driftloop.stack.processes import StackError

PROJECT_ENV = "DRIFTLOOP_PROJECT"
# In a checkout (or an editable install) this file is include/driftloop/stack/project.py.
_SOURCE_CHECKOUT = Path(__file__).resolve().parents[3]


def candidate_roots() -> list[Path]:
    """Where a project checkout may be, in order: ``$DRIFTLOOP_PROJECT``, the current folder,
    the checkout around this source file (absent in a wheel install)."""
    roots = []
    if os.environ.get(PROJECT_ENV):
        roots.append(Path(os.environ[PROJECT_ENV]).expanduser().resolve())
    roots += [Path.cwd().resolve(), _SOURCE_CHECKOUT]
    return list(dict.fromkeys(roots))


def project_path(relative: str) -> Path:
    """``relative`` (a folder or file of the project, e.g. ``dags``) in the first candidate
    root that has it; a :class:`StackError` naming every place looked otherwise."""
    looked = [root / relative for root in candidate_roots()]
    for path in looked:
        if path.exists():
            return path
    places = ", ".join(str(path) for path in looked)
    raise StackError(
        f"driftloop needs the project's {relative} (from a checkout of driftloop; an installed "
        f"wheel does not carry it). Looked in: {places}. Run from the checkout's folder or set "
        f"{PROJECT_ENV} to it."
    )


def gunicorn_config() -> Path:
    """``serving/gunicorn.conf.py``: package data of ``serving``, so a wheel has it too. Found
    without importing ``serving`` (the library does not import the server)."""
    spec = importlib.util.find_spec("serving")
    if spec is None or spec.origin is None:
        raise StackError("the serving package is not installed (pip install driftloop)")
    return Path(spec.origin).resolve().with_name("gunicorn.conf.py")
