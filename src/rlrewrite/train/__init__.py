"""Training: the GRPO rewriter trainer, the SFT trainer, CPU memory helpers, checkpoints."""
