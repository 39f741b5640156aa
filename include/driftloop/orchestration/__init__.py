"""What the Airflow DAG files share (``dag_support``: settings, default arguments, failure
alerts) and the executor check (``executor``); the DAG files themselves stay in ``dags/``."""
