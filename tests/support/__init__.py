"""Helpers the tests share (homes with registered versions, simulated traffic, throw-away
PostgreSQL databases, hostile bodies, the dag.test() runner); none of them is a test module."""
