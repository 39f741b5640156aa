"""Drift methods: reference profiles, the statistics registry, calibration, the engine.

- ``profile``: a reference data set turned once into what every statistic needs; ``column``:
  one reference column, the type the statistics share.
- ``statistics``: the registry of per-column statistics (name, function, threshold, types).
- ``calibration``: each statistic's draws under "no drift", for thresholds per batch size.
- ``engine``: tests a batch against a profile and gives the verdict (``verdict``: its types).
- ``sketch``: mergeable per-column summaries of a batch too large to hold, with the Wasserstein
  error bound; ``streaming``: reads such a Parquet batch by row group into them and tests it
  (batches above ``drift.exact_batch_max`` rows).

Pure: the stored side (which batch, which profile, saved checks, the drift alert) is
``driftloop.stages.drift_check``; the report is ``driftloop.reports.drift``.
"""
