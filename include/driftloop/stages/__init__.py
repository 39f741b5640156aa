"""The stages of the loop: the only code that changes the world.

Everything here writes driftloop's rows, logs to MLflow, moves registry aliases or sends
alerts: ingest a batch, claim and check it, assess Production, retrain and gate, re-gate,
evaluate the A/B test, ask for approval, promote. The DAGs, the CLI, the server and the plugin
call these; the methods below (``drift``, ``performance``, ``ab``, ``gate``, ``training``)
compute and write nothing.
"""
