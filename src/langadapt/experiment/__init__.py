"""Orchestration, in one place: an experiment config compiled into stages (`pipeline`), the
stages run with their cache (`stages`) in a run folder (`run_folder`), sweeps expanded into runs
(`sweep`), runs launched here, in workers or on Slurm (`launch`), and compared (`compare`).
What the stages do beyond calling the pipeline packages lives beside them: the input text
(`corpus_text`), initialisation and adaptation jobs (`adaptation`), the results table (`results`)."""
