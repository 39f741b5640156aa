"""driftloop: the library behind the loop (settings, data, drift, training, registry, A/B tests
and promotion).

Layers, bottom up: ``config`` (the settings models, importing nothing else from driftloop) and
``settings_loader``; the domain modules (``data``, ``ingest``, ``drift``, ``training``,
``registry``, ``promotion``, ``ab``, ``alerts``...); ``dag_support`` for the DAG files. None of
them imports Airflow, Flask, the server (``serving``) or the DAGs: those call into the library.
The command line (``cli``) and the demo are the top layer and may use the server too.
``tests/test_layering.py`` checks this from the code's own imports.
"""

__version__ = "0.1.0"
