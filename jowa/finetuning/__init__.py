"""Few-shot fine-tuning of a pretrained agent on an unseen game (spec §9): `finetune.py` is its CLI."""
