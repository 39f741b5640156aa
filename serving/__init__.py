"""The driftloop prediction server (Flask): Production and Staging answer ``/predict`` by the
traffic split (``driftloop.ab.traffic``); every answer is logged for the A/B test.

``app.create_app`` wires the routes in ``blueprints`` to the shared objects; the prediction
itself is ``prediction`` (plain functions, no Flask), the bodies are ``schemas``, access is
``auth``, and metrics and error handling are ``hooks``.
"""
