"""Scoring with a registered version outside the server: loading a version's pipeline with its
feature schema, checking rows against that schema, and batch scoring of files."""
