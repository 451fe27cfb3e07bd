"""The study of issue #13 (`python study.py --budget cpu`): behaviour data → pretraining at several sizes →
evaluation against random, greedy and the behaviour agent → few-shot fine-tuning from pretrained and from
scratch → RESULTS.md with verdicts computed from the numbers."""
