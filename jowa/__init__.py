"""jowa: offline pretraining of generalist Atari agents with JOWA world-action models."""

__version__ = "0.1.0"
