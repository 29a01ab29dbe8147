"""Infrastructure shared by both trainers: checkpoints, run configs, LoRA, Hub push and model cards."""
