"""Training survives closed standard streams, as a Celery worker's task process may have them:
PyCaret captures fds 1 and 2 through ``sys.__stdout__``/``sys.__stderr__`` while models fit."""

from __future__ import annotations

import io
import sys

from driftloop.training.automl import _open_standard_streams


def test_closed_standard_streams_are_reopened(monkeypatch):
    closed = io.TextIOWrapper(io.BytesIO())
    closed.close()
    monkeypatch.setattr(sys, "__stdout__", closed)
    monkeypatch.setattr(sys, "__stderr__", None)
    _open_standard_streams()
    assert not sys.__stdout__.closed and sys.__stdout__.fileno() == 1
    assert not sys.__stderr__.closed and sys.__stderr__.fileno() >= 0
    kept = sys.__stdout__
    _open_standard_streams()  # open ones are left alone
    assert sys.__stdout__ is kept
