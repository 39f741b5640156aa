"""The loop's services as real processes: Airflow's components, an MLflow server and the
prediction server under gunicorn, each started in a session of its own and always stopped with
all of its descendants. ``make demo`` and the full-stack test run the same commands as the
compose file; nothing here imports Airflow, MLflow or Flask, it only runs their commands."""
