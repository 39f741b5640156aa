"""The driftloop plugin's FastAPI app (built lazily by ``driftloop_plugin``)."""
