-- Airflow, MLflow and driftloop each get their own database (all three use Alembic).
CREATE DATABASE airflow;
CREATE DATABASE mlflow;
CREATE DATABASE driftloop;
