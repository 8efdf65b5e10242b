"""The article's reference experiment: its datasets, its network, its built-in training loop."""
