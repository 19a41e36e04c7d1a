"""The study's reports, read from DVC experiments and committed run records, one entry point:
`python -m rlrewrite.report {comparison,rewriter,plots}` (see __main__.py)."""
