"""Evaluation and reporting: the gating Evaluator's config and verdict, its results read back, the report."""
