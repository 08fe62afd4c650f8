"""`--report parquet` with the local engine (issue 13): one file or a folder of parts with the CSV
report's rows, and a parquet folder left unfinished is resumed by the same command, no row twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_engines import assert_same_rows, awkward_folder, csv_rows
from fixtures_onnx import write_model_folder
from typer.testing import CliRunner

from imgcheck.cli import app  # the registered root app, as users run it

pq = pytest.importorskip(
    "pyarrow.parquet", reason="parquet needs pyarrow (the ray extra)", exc_type=ModuleNotFoundError
)



@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("model") / "m")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return awkward_folder(tmp_path_factory.mktemp("awkward") / "imgs")


def invoke(args: list[str], model_dir: Path, env: dict[str, str] | None = None) -> object:
    result = CliRunner().invoke(app, ["scan", "--model", str(model_dir), *args], env=env)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, result.output
    return result


def as_csv(table: object, columns: list[str]) -> list[dict[str, str]]:
    out = []
    for row in table.to_pylist():  # type: ignore[attr-defined]
        cells = {k: "" if row[k] is None else str(row[k]) for k in columns}
        cells["score"] = "" if row["score"] is None else f"{row['score']:.6f}"
        out.append(cells)
    return out


def test_one_file_has_the_csv_rows(folder: Path, model_dir: Path, tmp_path: Path) -> None:
    want = csv_rows(invoke([str(folder), "-f", "csv"], model_dir).stdout)
    target = tmp_path / "scan.parquet"
    result = invoke([str(folder), "-o", str(target)], model_dir)  # the format from the suffix
    assert result.exit_code == 1, result.output
    table = pq.read_table(target)
    assert table.column_names[: len(want[0])] == list(want[0]) and "sha256" in table.column_names
    assert_same_rows(as_csv(table, list(want[0])), want)
    flagged = [r for r in table.to_pylist() if r["verdict"] == "colorized"]
    assert flagged and all(len(r["sha256"]) == 64 for r in flagged)
    meta = pq.read_metadata(target).metadata
    assert b"imgcheck.summary" in meta and b'"flagged"' in meta[b"imgcheck.summary"]


def test_unfinished_folder_is_resumed(folder: Path, model_dir: Path, tmp_path: Path) -> None:
    want = csv_rows(invoke([str(folder), "-f", "csv"], model_dir).stdout)
    parts = tmp_path / "parts"
    args = [str(folder), "-f", "parquet", "-o", str(parts)]
    assert invoke(args, model_dir, env={"IMGCHECK_PART_ROWS": "3"}).exit_code == 1
    files = sorted(parts.glob("part-*.parquet"))
    assert len(files) >= 3 and (parts / "_SUCCESS").is_file()
    # As a killed run leaves it: some parts written, no _SUCCESS.
    (parts / "_SUCCESS").unlink()
    lost = sum(pq.read_metadata(p).num_rows for p in files[-2:])
    for p in files[-2:]:
        p.unlink()
    result = invoke(args, model_dir)
    assert result.exit_code == 1, result.output
    assert f"{len(want) - lost} rows from the interrupted run, {lost} scanned now" in result.stderr
    got = as_csv(pq.read_table(parts), list(want[0]))
    assert len(got) == len(want) and len({r["path"] for r in got}) == len(want)
    assert_same_rows(sorted(got, key=lambda r: r["path"]), sorted(want, key=lambda r: r["path"]))
    # Finished: the next run is a new scan that replaces our parts.
    result = invoke(args, model_dir)
    assert result.exit_code == 1 and "resumed" not in result.stderr
    assert pq.read_table(parts).num_rows == len(want)


def test_progress_bar_counts_errors() -> None:
    """The live bar says how many images could not be read (both engines feed it)."""
    import io

    from rich.console import Console

    from imgcheck.progress import ScanProgress
    from imgcheck.results import ScanResult, Status, Verdict

    out = io.StringIO()
    tty = Console(file=out, force_terminal=True, force_interactive=True, width=120)
    with ScanProgress(tty) as progress:
        progress.advance(ScanResult("a.jpg", Status.ERROR, error="truncated"))
        progress.advance(ScanResult("b.jpg", Status.OK, 0.9, Verdict.COLORIZED))
        progress._progress.refresh()
        shown = out.getvalue()
    assert "2 images" in shown and "1 flagged" in shown and "1 errors" in shown
