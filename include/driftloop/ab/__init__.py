"""A/B tests between the Staging and Production versions: statistics, decisions, reports and
Production's health. No Airflow or Flask inside; the ``ab_evaluate`` DAG and the CLI call it."""
