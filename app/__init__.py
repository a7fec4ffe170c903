"""trainwreck: what killed the training run, where, and what to change."""

__version__ = "0.1.0"
