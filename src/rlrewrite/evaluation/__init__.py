"""Scoring with lm-evaluation-harness: backends, the quiz task writer, task YAMLs (tasks/)."""
