"""Training: PyCaret AutoML (``automl``), MLflow tracking (``tracking``), the retraining steps
(``retrain``), the gate's statistics (``gate``, simulated in ``gate_simulation``) and what a
gate result does to the registry, re-gates included (``gatekeeper``)."""
