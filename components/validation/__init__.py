"""Validation: the examples against the schema (anomalies) and against each other (drift and skew), as gates."""
