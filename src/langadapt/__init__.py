"""langadapt: bring language models to under-served languages, one reproducible pipeline."""

__version__ = "0.1.0"
