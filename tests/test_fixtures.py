"""The suite stands on its own: its data is the in-repo cuts, and the guard in conftest.py fails a
test that opens a file outside the clone (as a data folder beside the project would be on a user's machine)."""

from __future__ import annotations

from pathlib import Path

import conftest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "data"


def test_the_guard_notes_a_file_opened_outside_the_allowed_folders(tmp_path, monkeypatch):
    """Real opens through the audit hook: with temp no longer allowed, reading a temp file is
    noted (then forgotten here, so this test itself passes); a missing file is not."""
    outside = tmp_path / "beside.txt"
    outside.write_text("data beside the clone\n", encoding="utf-8")
    monkeypatch.setattr(conftest, "ALLOWED", (str(ROOT) + "/",))
    monkeypatch.setattr(conftest, "_checked", {})
    try:
        outside.read_text(encoding="utf-8")
        (ROOT / "README.md").read_text(encoding="utf-8")
        try:
            open(tmp_path / "missing.txt", encoding="utf-8")  # noqa: SIM115
        except FileNotFoundError:
            pass
        noted = [path for path, _ in conftest.OUTSIDE]
    finally:
        conftest.OUTSIDE.clear()
    assert noted == [str(outside)]


def test_every_fixture_set_is_attributed_and_the_folder_stays_small():
    licences = (FIXTURES / "LICENSES.md").read_text(encoding="utf-8")
    sets = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
    assert sets == ["fineweb2", "ntrex128", "sib200", "tatoeba", "ud_maltese", "udhr"]
    for name in sets:
        assert f"| `{name}/" in licences, name
    size = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert size < 6_000_000, f"tests/fixtures/data holds {size / 1e6:.1f} MB; cut files to what tests read"


def test_no_test_reads_the_data_folder_beside_the_project():
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        text = path.read_text(encoding="utf-8")
        assert "/".join(("..", "shared")) not in text and "/".join(("shared", "data")) not in text, path.name
