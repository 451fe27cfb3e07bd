"""Training: the one loop, its engines (plain PyTorch / DDP, DeepSpeed ZeRO), checkpoints and logging."""
