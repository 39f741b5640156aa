"""Production's performance methods: measured on labelled rows, estimated before labels.

- ``intervals``: each metric with its confidence interval (Wilson for proportions, so a band
  never leaves [0, 1]); the A/B report uses them too.
- ``reference``: a version's out-of-sample predictions (gate holdout, or cross-validated),
  the yardstick of every judgement and the calibration set of the estimate.
- ``realized``: a batch's or a day's metrics and the drop test against the reference.
- ``estimated``: confidence-based performance estimation (CBPE) from calibrated probabilities.

Pure: the stored side (predictions per batch, late labels, checks, the decay event) is
``driftloop.stages.performance_check`` and ``driftloop.stages.batch_labels``.
"""
