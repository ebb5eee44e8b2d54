"""Training recipes. Each component trains with one command, e.g. ``python -m codec.train.vocoder``."""
