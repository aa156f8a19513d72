"""Stage 2: tokenizers, vocabulary expansion and initialisation of new embeddings."""
