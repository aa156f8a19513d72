"""`python -m langadapt.cli`: the same commands as `langadapt`."""

from langadapt.cli import app

app()
