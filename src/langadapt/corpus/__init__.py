"""Stage 1: read raw text into documents and curate it."""
