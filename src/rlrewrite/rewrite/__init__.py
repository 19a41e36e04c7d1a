"""Generate-Verify-Fallback: the four target-producing methods and the metrics of their targets."""
