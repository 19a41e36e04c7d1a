"""Shared code for the RL rewriting pipeline (arXiv 2602.11220); stage scripts live in src/."""
