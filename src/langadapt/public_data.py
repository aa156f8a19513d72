"""The public data sets the examples read, and `langadapt data get` that installs them.

Examples name their files as `${LANGADAPT_DATA}/<set>/<file>`: the set's folder inside one data home
(`LANGADAPT_DATA`, else `$XDG_CACHE_HOME/langadapt/data`, else `~/.cache/langadapt/data`), laid out as
upstream publishes it, so a folder copied from another machine works as is. Each set knows its
upstream (a Hugging Face dataset or a pinned commit of a GitHub repository), which files a language
needs, and its licence. A missing file under the data home is reported with the command that fetches
it (`missing_hint`), before any work starts.

Online, files come through `huggingface_hub` (Hugging Face datasets) or a plain HTTPS download (raw
GitHub files); `base_url` may point at a mirror, `file://` included, and `get(..., source=DIR)`
copies the same layout from a local folder for offline machines. Every file is written atomically.
No torch here: config validation imports this module.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from langadapt.atomic import write_with
from langadapt.errors import LangadaptError

DATA_ENV = "LANGADAPT_DATA"


def data_home() -> Path:
    """Where examples look for data: `LANGADAPT_DATA`, else the user's cache folder."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "langadapt" / "data"


@dataclass(frozen=True)
class PublicSet:
    """One data set: where it comes from, which files a language needs, how it is licensed.

    `files(language)` lists paths relative to the set's folder; `always` are needed whatever the
    languages (the English side of a parallel set, a label list). `language_of` reads a language code
    back from such a path, so a missing file can be reported as the command that fetches it."""

    name: str
    what: str
    licence: str
    upstream: str
    files: Callable[[str], list[str]]
    language_of: Callable[[str], str | None]
    defaults: tuple[str, ...]
    always: tuple[str, ...] = ()
    hf_repo: str | None = None  # Hugging Face dataset repository: files via huggingface_hub
    hf_prefix: str = ""
    revision: str = "main"
    base_url: str | None = None  # otherwise: plain downloads from this URL (+ the upstream path)
    url_path: Callable[[str], str] = field(default=lambda path: path)

    def needed(self, languages: Iterable[str]) -> list[str]:
        """Relative paths the given languages need, `always` first, without repeats."""
        paths = list(self.always) + [path for language in languages for path in self.files(language)]
        return list(dict.fromkeys(paths))

    def command(self, languages: Iterable[str] = ()) -> str:
        """The shell command that installs these languages of this set."""
        chosen = ",".join(dict.fromkeys(languages))
        return f"langadapt data get {self.name}" + (f" --languages {chosen}" if chosen else "")


SETS: dict[str, PublicSet] = {}


def public_set(item: PublicSet) -> PublicSet:
    """Register a set under its name (`langadapt data get NAME`)."""
    SETS[item.name] = item
    return item


def _match(pattern: str) -> Callable[[str], str | None]:
    compiled = re.compile(pattern)

    def language_of(path: str) -> str | None:
        found = compiled.fullmatch(path)
        return found.group(1) if found else None

    return language_of


public_set(PublicSet(
    name="sib200",
    what="SIB-200 topic classification: FLORES-200 sentences with one of 7 topics, sentence-parallel "
         "across 205 languages (<lang_Script>/{train,dev,test}.tsv, labels.txt)",
    licence="CC BY-SA 4.0 (FLORES-200 text), Apache-2.0 (SIB-200 labels)",
    upstream="Hugging Face dataset Davlan/sib200 (files data/<lang_Script>/*)",
    files=lambda lang: [f"{lang}/{name}" for name in ("train.tsv", "dev.tsv", "test.tsv", "labels.txt")],
    language_of=_match(r"([a-z]{3}_[A-Z][a-z]{3})/.*"),
    defaults=("eng_Latn", "swh_Latn", "fao_Latn", "kin_Latn", "ces_Latn", "pol_Latn"),
    hf_repo="Davlan/sib200", hf_prefix="data/",
))

public_set(PublicSet(
    name="ntrex128",
    what="NTREX-128: 1,997 news sentences translated from English into 128 languages, line-parallel "
         "(newstest2019-src.eng.txt, newstest2019-ref.<code>.txt)",
    licence="CC BY-SA 4.0",
    upstream="github.com/MicrosoftTranslator/NTREX, folder NTREX-128, commit 8561f6a6",
    files=lambda code: [f"newstest2019-ref.{code}.txt"],
    language_of=_match(r"newstest2019-ref\.(.+)\.txt"),
    defaults=("swa", "isl", "dan", "swe", "nob", "fao", "ces", "kin"),
    always=("newstest2019-src.eng.txt",),
    base_url="https://raw.githubusercontent.com/MicrosoftTranslator/NTREX/8561f6a622db9edad1217683e5c83daefd8bb2bf/",
    url_path=lambda path: f"NTREX-128/{path}",
))

public_set(PublicSet(
    name="tatoeba",
    what="Tatoeba sentence pairs, the LASER test sets: line i of tatoeba.<xxx>-eng.<xxx> translates "
         "line i of tatoeba.<xxx>-eng.eng (112 languages)",
    licence="CC BY 2.0 FR",
    upstream="github.com/facebookresearch/LASER, folder data/tatoeba/v1, commit fec5c7d6",
    files=lambda code: [f"tatoeba.{code}-eng.{code}", f"tatoeba.{code}-eng.eng"],
    language_of=_match(r"tatoeba\.([a-z]{3})-eng\..*"),
    defaults=("hsb", "swh", "dan"),
    base_url="https://raw.githubusercontent.com/facebookresearch/LASER/fec5c7d63daa2bea9d127e8252b10e87278586c0/",
    url_path=lambda path: f"data/tatoeba/v1/{path}",
))

public_set(PublicSet(
    name="ud_maltese",
    what="Universal Dependencies Maltese treebank MUDT (mt_mudt-ud-{train,dev,test}.conllu)",
    licence="CC BY-SA 4.0",
    upstream="github.com/UniversalDependencies/UD_Maltese-MUDT, commit 135c1e93",
    files=lambda _lang: [],
    language_of=lambda _path: None,
    defaults=(),
    always=tuple(f"mt_mudt-ud-{split}.conllu" for split in ("train", "dev", "test")),
    base_url="https://raw.githubusercontent.com/UniversalDependencies/UD_Maltese-MUDT/"
             "135c1e93af67ecafcc2d8c34115b85a77c4e8a5a/",
))

public_set(PublicSet(
    name="fineweb2",
    what="FineWeb2's published per-language filter thresholds (configs/<lang_Script>.yml)",
    licence="Apache-2.0",
    upstream="github.com/huggingface/fineweb-2, folder configs, commit c7004ff9",
    files=lambda lang: [f"configs/{lang}.yml"],
    language_of=_match(r"configs/([a-z]{3}_[A-Z][a-z]{3})\.yml"),
    defaults=("dan_Latn", "swe_Latn", "fao_Latn", "isl_Latn", "swh_Latn", "ces_Latn", "hsb_Latn"),
    base_url="https://raw.githubusercontent.com/huggingface/fineweb-2/c7004ff99c429b3f242d489288cc6b5d10081f99/",
))


def lookup(name: str) -> PublicSet:
    """The set called `name`; an unknown name lists the known ones."""
    if name not in SETS:
        raise LangadaptError(f"no public data set called {name!r}",
                             fix=f"choose one of {', '.join(sorted(SETS))} (`langadapt data list`).")
    return SETS[name]


def _download_hf(item: PublicSet, path: str, target: Path) -> None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    where = f"huggingface.co/datasets/{item.hf_repo}"
    try:
        cached = hf_hub_download(item.hf_repo, item.hf_prefix + path, repo_type="dataset", revision=item.revision)
    except RemoteEntryNotFoundError:  # the repository answered: no such file (a wrong language code)
        raise _absent(item, path, where) from None
    except OSError as err:  # no connection and nothing cached (LocalEntryNotFoundError), HTTP errors
        raise _offline(item, where, err) from None
    write_with(target, lambda tmp: shutil.copyfile(cached, tmp))


def _download_url(item: PublicSet, path: str, target: Path, base_url: str) -> None:
    url = base_url.rstrip("/") + "/" + item.url_path(path)

    def fetch(tmp: Path) -> None:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:  # noqa: S310
            shutil.copyfileobj(response, out)

    try:
        write_with(target, fetch)
    except urllib.error.HTTPError as err:
        if err.code == 404:
            raise _absent(item, path, url) from None
        raise _offline(item, url, err) from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, FileNotFoundError):  # a file:// mirror without this file
            raise _absent(item, path, url) from None
        raise _offline(item, url, err) from None
    except OSError as err:
        raise _offline(item, url, err) from None


def _absent(item: PublicSet, path: str, where: str) -> LangadaptError:
    language = item.language_of(path)
    return LangadaptError(f"{item.name} has no file {path}" + (f" (language {language!r})" if language else ""),
                          where=where, fix=f"check the language code: {item.what}.")


def _offline(item: PublicSet, where: str, err: Exception) -> LangadaptError:
    return LangadaptError(f"could not download {item.name} ({err})", where=where,
                          fix=f"connect to the internet, or copy the data from a machine that has it and run "
                              f"`langadapt data get {item.name} --from DIR` (DIR holds {item.name}/ as laid out "
                              f"in the data home).")


def get(name: str, languages: Iterable[str] | None = None, home: Path | None = None, source: Path | None = None,
        base_url: str | None = None, overwrite: bool = False) -> list[Path]:
    """Install the files `languages` need of set `name` into `home/name/` and return their paths.

    `source` copies them from a local folder laid out the same way (`source/name/...`); otherwise
    they are downloaded (`base_url` replaces a URL set's upstream, e.g. a `file://` mirror). Files
    already present are kept unless `overwrite`."""
    item = lookup(name)
    chosen = list(item.defaults if languages is None else languages)
    home = Path(home) if home is not None else data_home()
    folder = home / item.name
    done = []
    for path in item.needed(chosen):
        target = folder / path
        if target.is_file() and not overwrite:
            done.append(target)
            continue
        if source is not None:
            origin = Path(source) / item.name / path
            if not origin.is_file():
                raise LangadaptError(f"{origin} is missing", where="--from",
                                     fix=f"give a folder holding {item.name}/{path} (the layout of the data home; "
                                         f"`langadapt data list` describes each set).")
            write_with(target, lambda tmp, origin=origin: shutil.copyfile(origin, tmp))
        elif item.hf_repo and base_url is None:
            _download_hf(item, path, target)
        else:
            _download_url(item, path, target, base_url or item.base_url)
        done.append(target)
    return done


def wanted(path: Path) -> tuple[str, str | None] | None:
    """(set, language) if `path` lies in a known set's folder of the data home, else None: what
    `langadapt data get` would fetch to create it."""
    try:
        relative = Path(os.path.abspath(path)).relative_to(os.path.abspath(data_home()))
    except ValueError:
        return None
    if not relative.parts or relative.parts[0] not in SETS:
        return None
    inner = "/".join(relative.parts[1:])
    return relative.parts[0], SETS[relative.parts[0]].language_of(inner) if inner else None


def fetch_hint(pairs: Iterable[tuple[str, str | None]], home: Path | None = None) -> str:
    """The commands that fetch these (set, language) pairs, one per set, as a fix to print."""
    languages: dict[str, list[str]] = {}
    for name, language in pairs:
        languages.setdefault(name, [])
        if language and language not in languages[name]:
            languages[name].append(language)
    home = Path(home) if home is not None else data_home()
    place = "" if home == data_home() else f" --to {home}"
    commands = " and ".join(f"`{lookup(name).command(chosen)}{place}`" for name, chosen in languages.items())
    return f"fetch the data with {commands} (into {home}; {DATA_ENV} names another folder)."


def missing_data(needs: dict[str, Iterable[str]], home: Path | None = None) -> str | None:
    """None if the data home holds what `needs` ({set: languages}) names; else a message giving the
    first missing file and the commands that fetch everything missing. Scripts check it before any work."""
    home = Path(home) if home is not None else data_home()
    missing = [(home / name / path, name, lookup(name).language_of(path)) for name, languages in needs.items()
               for path in lookup(name).needed(list(languages)) if not (home / name / path).is_file()]
    if not missing:
        return None
    hint = fetch_hint([(name, lang) for _, name, lang in missing], home)
    return f"data missing: {missing[0][0]}. {hint[0].upper()}{hint[1:]}"
