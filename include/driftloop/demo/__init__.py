"""The whole loop for real on one machine (``driftloop demo``, ``make demo``, the full-stack
test): ``loop`` runs it and sums it up, ``environment`` prepares it, ``watch`` triggers and
reads the DAG runs."""
