"""Who generates: the hf and vllm generators, the rewriter LoRA adapter, the engine factory."""
