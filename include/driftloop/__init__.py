"""driftloop: the library behind the loop (data, drift, training, registry, A/B statistics).

It knows nothing of Airflow or Flask: DAGs and the server call into it.
"""

__version__ = "0.1.0"
