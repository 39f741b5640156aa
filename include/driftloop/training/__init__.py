"""Training: PyCaret AutoML (``automl``), MLflow tracking (``tracking``) and the retraining
flow with its gate (``retrain``)."""
