"""Few-shot fine-tuning of a pretrained agent on an unseen game (docs/official_jowa.md §9): `finetune.py` is its CLI."""
