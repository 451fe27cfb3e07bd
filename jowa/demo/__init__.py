"""`make demo`: collect → pretrain tiny → fine-tune on a held-out game → evaluate → one report."""
