"""Serving: the served model as the baseline, and the atomic push (and rollback) of new versions."""
