"""Names of the events the loop's parts exchange (Airflow Assets in the DAGs).

The library knows nothing of Airflow; the DAGs build their Assets from these URIs, so every
producer and consumer agrees on one spelling.
"""

DRIFT_ASSET_URI = "driftloop://drift"
DECAY_ASSET_URI = "driftloop://decay"
