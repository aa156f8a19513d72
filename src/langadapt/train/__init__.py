"""Stage 3: the training loop."""
