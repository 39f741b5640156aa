"""What the benchmark scripts share, so that no script imports another.

Why: scripts that import sibling scripts break when one is renamed or its ``main`` changes,
and copied helpers drift apart. ``common`` holds paths, versions, peak memory, child
processes, PostgreSQL databases, Evidently's virtualenv and the ``--smoke`` flag; ``homes``
the trained model homes; ``servers`` starting and stopping servers; ``load`` the load client;
``drift_data`` the drift benchmarks' seeded data; ``decisions`` what the decision-table sections
share (options, clustered intervals, workers); ``chunks`` their cells in stored chunks of
references; ``calibration_*`` the parts of
``drift_calibration.py`` (data, driftloop's side, Evidently's child, tallies, report).
Scripts put ``benchmarks/`` on ``sys.path`` (Python does when a script runs) and import
``support.<module>``.
"""
