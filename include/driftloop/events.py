"""Names of the events the loop's parts exchange (Airflow Assets in the DAGs).

The library knows nothing of Airflow; the DAGs build their Assets from these URIs, so every
producer and consumer agrees on one spelling.
"""

DRIFT_ASSET_URI = "driftloop://drift"
DECAY_ASSET_URI = "driftloop://decay"
APPROVAL_ASSET_URI = "driftloop://approval"
# The DAG that asks a person, and its human-in-the-loop task: the CLI answers it by these names.
APPROVAL_DAG_ID = "ab_approval"
APPROVAL_TASK_ID = "wait_for_person"
