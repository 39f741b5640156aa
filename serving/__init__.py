"""The driftloop prediction server (Flask): routing between the Production and Staging models.

Being built for the serving issue; what exists is routing (``serving.routing``).
"""
