"""`langadapt data list|get`: the public data sets the examples read."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from langadapt.cli.common import console, guarded, listed, show
from langadapt.paths import FOLDER, check_path


def data_list() -> None:
    """Each set `data get` installs: what it holds, its upstream, its licence and default languages."""
    from langadapt.public_data import SETS, data_home

    for item in SETS.values():
        console.print(Text.assemble((item.name, "bold"), f": {item.what}. From {item.upstream}; licence "
                                    f"{item.licence}. Default languages: {' '.join(item.defaults) or '(one set)'}."),
                      highlight=False)
    console.print(f"Data home: {data_home()} (LANGADAPT_DATA overrides it).", highlight=False)


def data_get(
    name: str = typer.Argument(..., help="The set: sib200, ntrex128, tatoeba, ud_maltese or fineweb2."),
    languages: list[str] = typer.Option(None, "--languages", help="Language codes as the set spells them "
                                        "(sib200: swh_Latn; ntrex128: swa; tatoeba: hsb), comma-separated or the "
                                        "flag repeated; default: the languages the examples use."),
    to: Path = typer.Option(None, "--to", help="Data home to install into (default: LANGADAPT_DATA, else "
                                               "~/.cache/langadapt/data)."),
    from_: Path = typer.Option(None, "--from", help="Copy from this local folder (holding NAME/ in the same "
                                                    "layout) instead of downloading: for offline machines."),
    mirror: str = typer.Option(None, "--mirror", help="Download from this URL (a mirror of the upstream files, "
                                                      "file:// included) instead of the upstream."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Fetch again files already installed."),
) -> None:
    """Install a public data set into the data home, where the examples look for it."""
    from langadapt.public_data import data_home, get

    chosen = listed(",".join(languages)) if languages else None

    def action():
        if from_ is not None:
            check_path(from_, FOLDER, "--from")
        files = get(name, chosen, home=to, source=from_, base_url=mirror, overwrite=overwrite)
        home = to if to is not None else data_home()
        show(f"{name}: {len(files)} files in ", Path(home) / name)

    guarded(action)


