"""Token data for training: tokenise, pack, sample blocks."""
