"""Shared fixtures: real text only (the sample corpus and the in-repo cuts under tests/fixtures/data).

The suite stands on its own: a fresh clone with nothing beside it passes. To keep it so, every file a
test opens in this process must lie inside the repository, the Python installation (virtualenv,
stdlib, site-packages), a temp folder, a user cache or the operating system's own folders; a test
that opens an existing file anywhere else (e.g. a data folder beside the project) fails, naming the file. Subprocesses
are not watched here; `.ci/run` runs the whole suite from a clone with nothing beside it for them.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "data"
# Examples read `${LANGADAPT_DATA}`: under the tests (subprocesses included) that is the fixture cut.
os.environ["LANGADAPT_DATA"] = str(FIXTURE_DATA)


@pytest.fixture(scope="session")
def shared():
    """`shared("udhr")` is a path under tests/fixtures/data (the in-repo cuts of the public sets, laid
    out as upstream publishes them; LICENSES.md names each source); a missing path fails the test."""

    def locate(*parts: str) -> Path:
        path = FIXTURE_DATA.joinpath(*parts)
        if not path.exists():
            pytest.fail(f"test data missing: {path} (the tests read the cuts in tests/fixtures/data; "
                        "add the file there, cut to what the test needs, and name its source in LICENSES.md)")
        return path

    return locate


@pytest.fixture(scope="session")
def sample_docs():
    from langadapt.corpus.sources import read_sample

    return list(read_sample(["ces_Latn", "pol_Latn", "hsb_Latn"]))


@pytest.fixture(scope="session")
def tokenizers(sample_docs):
    """A source tokenizer (ces+pol), a target one (hsb) and the expansion of the first by the second."""
    from langadapt.vocab.expand import expand_bpe
    from langadapt.vocab.tokenizer import train_bpe

    source = train_bpe([d.text for d in sample_docs if d.lang != "hsb_Latn"], 800)
    target = train_bpe([d.text for d in sample_docs if d.lang == "hsb_Latn"], 600)
    return source, target, expand_bpe(source, target, 200)


# --- The guard: no test reads outside the clone -------------------------------------------------

SYSTEM = ("/dev", "/proc", "/sys", "/etc", "/run", "/usr", "/lib", "/lib64", "/bin", "/sbin", "/var/cache",
          "/var/lib", "/var/tmp")


def _allowed_roots() -> tuple[str, ...]:
    """Folders a test may read: this clone, Python and its packages, temp, caches, the system."""
    home = Path.home()
    roots = [ROOT, sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, tempfile.gettempdir(),
             home / ".cache", home / ".config", home / ".local", *sysconfig.get_paths().values(), *SYSTEM]
    roots += [os.environ[name] for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "HF_HOME", "TORCH_HOME",
                                            "MPLCONFIGDIR", "TMPDIR") if os.environ.get(name)]
    roots += [p for p in sys.path if p and os.path.isdir(p)]  # where imports come from (site-packages, .pth)
    if site.ENABLE_USER_SITE:
        roots.append(site.getusersitepackages())
    folders = {os.path.abspath(str(root)) for root in roots} | {os.path.realpath(str(root)) for root in roots}
    return tuple(sorted(folder.rstrip("/") + "/" for folder in folders if folder != "/"))


ALLOWED = _allowed_roots()
OUTSIDE: list[tuple[str, str]] = []  # (path, test) opened outside ALLOWED, reported by the next check
_checked: dict[str, bool] = {}


def _inside(path: str) -> bool:
    if (path + "/").startswith(ALLOWED):  # a file in an allowed folder, or the folder itself
        return True
    if path not in _checked:  # through symbolic links
        _checked[path] = (os.path.realpath(path) + "/").startswith(ALLOWED)
    return _checked[path]


def _watch_open(event: str, args: tuple) -> None:
    """Audit hook: note every existing file opened outside the allowed folders (a missing one cannot
    make a test depend on data beside the clone, and tests probe missing paths on purpose)."""
    if event != "open" or not args or not isinstance(args[0], str | bytes | os.PathLike):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if not _inside(path) and os.path.exists(path):
        OUTSIDE.append((path, os.environ.get("PYTEST_CURRENT_TEST", "collection")))


sys.addaudithook(_watch_open)  # hooks last for the process; conftest is loaded only by pytest


def _report() -> str:
    lines = sorted({f"{path} (in {test})" for path, test in OUTSIDE})
    OUTSIDE.clear()
    return ("opened files outside the repository, the Python installation, temp and caches: "
            + "; ".join(lines[:10]) + ". Tests read only tests/fixtures/data (the `shared` fixture) or data a "
            "pip package ships; add a cut of the file there.")


@pytest.fixture(autouse=True)
def _reads_stay_inside():
    """Fail a test that opened a file outside the clone (e.g. a data folder beside the project)."""
    yield
    if OUTSIDE:
        pytest.fail(_report(), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Opens outside any test (collection, module imports) fail the run too."""
    if OUTSIDE:
        session.config.get_terminal_writer().line("\n" + _report(), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
