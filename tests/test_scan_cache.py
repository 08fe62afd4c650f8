"""`imgcheck scan --cache DIR`: rows of unchanged images come back from a real SQLite database,
keyed by content and settings; everything else is scanned as before.

Runs the real command line against the tiny fake detector of tests/fixtures_onnx.py (colourful
images are flagged, muted ones are real).
"""

from __future__ import annotations

import csv
import io
import os
import re
import sqlite3
from pathlib import Path

import pytest
from fixtures_cli import run_cli
from fixtures_onnx import colourful, muted, write_model_folder
from PIL import Image

from imgcheck.cache import FILE


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("model") / "m")


pytestmark = pytest.mark.usefixtures("no_imgcheck_env")


def scan(model_dir: Path, *args: object):
    result = run_cli(["scan", "--model", model_dir, "--workers", "1", "-f", "csv", *args])
    assert "Traceback" not in result.output, result.output
    return result


def rows(text: str) -> dict[str, dict[str, str]]:
    return {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(text))}


def from_cache(stderr: str) -> tuple[int, int, int]:
    """(rows from the cache, rows in all, rows stored) from the scan's cache line."""
    m = re.search(r"(\d+) of (\d+) rows from the cache .* \((\d+) rows stored\)", stderr)
    assert m, stderr
    return int(m[1]), int(m[2]), int(m[3])


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(colourful(seed=i)).save(folder / f"fake{i}.png")
    for i in range(2):
        Image.fromarray(muted(seed=i)).save(folder / f"real{i}.png")
    Image.new("L", (96, 80), 128).save(folder / "grey.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    return folder


def test_unchanged_images_come_from_the_cache_by_content(
    tmp_path: Path, model_dir: Path, catalog: Path
) -> None:
    cache = tmp_path / "cache"
    first = scan(model_dir, catalog, "--cache", cache)
    assert first.exit_code == 1
    # The broken file is an error row: scanned again every time, never stored.
    assert from_cache(first.stderr) == (0, 7, 6)
    assert rows(first.stdout)["broken.png"]["status"] == "error"
    again = scan(model_dir, catalog, "--cache", cache)
    assert (again.exit_code, again.stdout) == (first.exit_code, first.stdout)
    assert from_cache(again.stderr) == (6, 7, 0)

    # A rename and a new mtime (what a fresh git checkout gives) keep the content: still hits.
    (catalog / "real0.png").rename(catalog / "moved.png")
    os.utime(catalog / "fake0.png", ns=(1, 1))
    moved = scan(model_dir, catalog, "--cache", cache)
    assert from_cache(moved.stderr) == (6, 7, 0)
    assert rows(moved.stdout)["moved.png"] == {
        **rows(first.stdout)["real0.png"],
        "path": str(catalog / "moved.png"),
    }

    # Other content under an old name is scanned, and its new verdict is the one reported.
    Image.fromarray(colourful(seed=9)).save(catalog / "real1.png")
    changed = scan(model_dir, catalog, "--cache", cache)
    assert from_cache(changed.stderr) == (5, 7, 1)
    assert rows(changed.stdout)["real1.png"]["verdict"] == "colorized"
    assert rows(first.stdout)["real1.png"]["verdict"] == "real"


def test_other_settings_are_other_rows(tmp_path: Path, model_dir: Path, catalog: Path) -> None:
    cache = tmp_path / "cache"
    base = scan(model_dir, catalog, "--cache", cache)
    strict = scan(model_dir, catalog, "--cache", cache, "--threshold", "0.99")
    assert from_cache(strict.stderr)[0] == 0
    for row in rows(strict.stdout).values():  # verdicts drawn at 0.99, not from the 0.5 scan
        if row["status"] == "ok":
            assert (row["verdict"] == "colorized") == (float(row["score"]) >= 0.99)
    small = scan(model_dir, catalog, "--cache", cache, "--min-side", "100")
    assert from_cache(small.stderr)[0] == 0
    assert {r["status"] for r in rows(small.stdout).values()} == {"too_small", "grayscale", "error"}
    back = scan(model_dir, catalog, "--cache", cache)
    assert from_cache(back.stderr)[0] == 6 and back.stdout == base.stdout
    with sqlite3.connect(cache / FILE) as db:
        assert db.execute("SELECT COUNT(DISTINCT scan) FROM rows").fetchone()[0] == 3


def test_cache_that_is_a_file_is_a_usage_error(
    tmp_path: Path, model_dir: Path, catalog: Path
) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    result = scan(model_dir, catalog, "--cache", target)
    assert result.exit_code == 2
    assert "not a folder" in result.stderr
    assert target.read_text() == "mine"


def test_unreadable_database_is_left_alone_and_the_scan_runs(
    tmp_path: Path, model_dir: Path, catalog: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    junk = b"this is not a database, and it is somebody's file" * 100
    (cache / FILE).write_bytes(junk)
    result = scan(model_dir, catalog, "--cache", cache)
    assert result.exit_code == 1 and len(rows(result.stdout)) == 7
    assert "runs without the cache" in result.stderr
    assert (cache / FILE).read_bytes() == junk


def test_html_report_does_not_use_the_cache(tmp_path: Path, model_dir: Path, catalog: Path) -> None:
    cache = tmp_path / "cache"
    out = tmp_path / "report.html"
    result = scan(model_dir, catalog, "--cache", cache, "-f", "html", "-o", out)
    assert result.exit_code == 1 and out.is_file()
    assert "--cache is not used with --report html" in result.stderr
    assert not cache.exists()


def test_cache_from_the_config_file(
    tmp_path: Path, model_dir: Path, catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cache = "DIR"` in pyproject.toml, relative to that file, like the other path keys."""
    (tmp_path / "pyproject.toml").write_text('[tool.imgcheck]\ncache = ".imgcheck-cache"\n')
    work = tmp_path / "sub"
    work.mkdir()
    monkeypatch.chdir(work)
    scan(model_dir, catalog)
    assert (tmp_path / ".imgcheck-cache" / FILE).is_file()
    again = scan(model_dir, catalog)
    assert from_cache(again.stderr) == (6, 7, 0)


def test_parquet_folder_report_with_the_cache(
    tmp_path: Path, model_dir: Path, catalog: Path
) -> None:
    """The resume journal (a parquet folder report) and the cache stack: same rows either way."""
    pytest.importorskip("pyarrow", reason="the parquet report needs the parquet extra")
    import pyarrow.parquet as pq

    cache = tmp_path / "cache"
    plain = scan(model_dir, catalog, "--cache", cache)
    out = tmp_path / "parts"
    result = scan(model_dir, catalog, "--cache", cache, "-f", "parquet", "-o", out)
    assert result.exit_code == 1 and from_cache(result.stderr)[0] == 6
    table = pq.read_table(out).to_pylist()
    got = {Path(r["path"]).name: (r["status"], r["verdict"]) for r in table}
    want = {k: (r["status"], r["verdict"]) for k, r in rows(plain.stdout).items()}
    assert got == want


def test_another_programs_database_is_not_touched(
    tmp_path: Path, model_dir: Path, catalog: Path
) -> None:
    """A valid SQLite file of the same name that is not ours gets no tables of ours."""
    cache = tmp_path / "cache"
    cache.mkdir()
    with sqlite3.connect(cache / FILE) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('keep me')")
    before = (cache / FILE).read_bytes()
    result = scan(model_dir, catalog, "--cache", cache)
    assert result.exit_code == 1 and len(rows(result.stdout)) == 7
    assert "is not an imgcheck scan cache" in result.stderr
    assert (cache / FILE).read_bytes() == before


def test_ray_engine_does_not_use_the_cache(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The Ray engine's rows are made on the cluster: the cache is skipped, with a warning,
    before anything is created."""
    from imgcheck.cli_scan import _open_cache
    from imgcheck.options import ScanOptions

    opts = ScanOptions(paths=["x"], cache=tmp_path / "cache", engine="ray")
    assert _open_cache(opts, "csv", None, {}) is None
    assert "--cache is not used with --engine ray" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()
