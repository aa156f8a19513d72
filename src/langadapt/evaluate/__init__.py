"""Stage 4: evaluation."""
