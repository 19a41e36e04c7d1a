"""The rewriter's reward: answer checking, the gate, π0 scoring, group rewards, the GRPO adapter."""
