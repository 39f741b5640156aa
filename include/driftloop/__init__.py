"""driftloop: the library behind the loop.

Four layers, bottom up (``docs/architecture.md``; ``tests/test_layering.py`` checks them from
the code's own imports):

- the foundation, at this package's root: ``config`` and ``settings_loader``, ``storage``,
  ``schema``, ``database``, ``migrations``, ``registry`` (conventions and reads), ``data``,
  ``vocabulary``, ``events``, ``task``, ``redaction``;
- the methods, pure computations that write nothing: ``drift``, ``performance``, ``ab``,
  ``gate``, ``training``, ``scoring``, ``reports``, ``ingestion``;
- the stages (``stages``), the only code that writes rows, logs to MLflow, moves aliases or
  sends alerts;
- the entry points: ``cli``, ``demo``, ``orchestration`` (for the DAG files), ``ui`` (the
  plugin page and the gauges), ``stack`` (the services as processes).

None of them imports Airflow, Flask, the server (``serving``) or the DAGs; the command line and
the demo may use the server.
"""

__version__ = "0.1.0"
