"""`imgcheck scan --engine ray` on a real local Ray cluster (issue 13).

One Ray instance for the module (`ray.init(num_cpus=2)`, small object store), shared by the
in-process CLI runs and, through its address, by drivers started as subprocesses (the one this
test kills, the one that reads a bucket). Everything is real: Ray Data stages and actors, ONNX
Runtime on the fake detector, Parquet files, and an S3-compatible server on loopback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_engines import (
    assert_same_rows,
    awkward_folder,
    csv_rows,
    s3_server,
    s3_settings,
    upload,
)
from fixtures_onnx import colourful, write_model_folder
from PIL import Image
from typer.testing import CliRunner

ray = pytest.importorskip(
    "ray",
    reason="the ray extra is not installed (pip install '.[ray]')",
    exc_type=ModuleNotFoundError,
)

from imgcheck.cli import app  # noqa: E402  (the registered root app, as users run it)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray instance for the module, on loopback; yields its address for subprocess
    drivers."""
    ray.init(
        num_cpus=2,
        object_store_memory=96 << 20,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _node_ip_address="127.0.0.1",
        address="local",  # a new instance, never a cluster `ray start` left recorded
    )
    try:
        yield "127.0.0.1:" + ray.get_runtime_context().gcs_address.rsplit(":", 1)[1]
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("model") / "m")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return awkward_folder(tmp_path_factory.mktemp("awkward") / "imgs")


def invoke(args: list[str], model_dir: Path) -> object:
    result = CliRunner().invoke(app, ["scan", "--model", str(model_dir), *args])
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, result.output
    return result


@pytest.fixture(scope="module")
def local_rows(folder: Path, model_dir: Path) -> list[dict[str, str]]:
    result = invoke([str(folder), "--report", "csv"], model_dir)
    assert result.exit_code == 1, result.output
    return csv_rows(result.stdout)


def test_same_rows_and_scores_as_local(
    cluster: str, folder: Path, model_dir: Path, local_rows: list[dict[str, str]]
) -> None:
    result = invoke([str(folder), "--report", "csv", "--engine", "ray"], model_dir)
    assert result.exit_code == 1, result.output  # images were flagged: same gate as local
    got = csv_rows(result.stdout)
    assert_same_rows(got, local_rows)
    by_name = {Path(r["path"]).name: r for r in got}
    for bad in ("empty.jpg", "truncated.jpg", "text.jpg", "broken.png"):
        assert by_name[bad]["status"] == "error" and by_name[bad]["error"], by_name[bad]
    assert by_name["broken.png"]["error"] == "broken symlink"
    assert by_name["grey16.png"]["status"] == "grayscale"
    assert ".hidden.png" not in by_name and "noext" in by_name  # the local walk's rules
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith(f"imgcheck: {len(local_rows)} images in ")
    errors = sum(r["status"] == "error" for r in local_rows)
    assert f"{errors} errors" in summary and ", cpu, threshold 0.500)" in summary


def test_cascade_flows_through_the_actors(
    cluster: str, folder: Path, tmp_path: Path
) -> None:
    """The actors call Scanner.score, so the cascade (and --no-cascade) is the local one."""
    model = write_model_folder(tmp_path / "cascade", cascade=[(1, 0.05), (2, 0.2), (3, 0.3)])
    for extra in ([], ["--no-cascade"]):
        want = csv_rows(invoke([str(folder), "-f", "csv", *extra], model).stdout)
        got = csv_rows(invoke([str(folder), "-f", "csv", "--engine", "ray", *extra], model).stdout)
        assert_same_rows(got, want)
        screened = [r for r in got if r["stage"] == "screen"]
        assert bool(screened) == (not extra), got


def test_exit_codes(cluster: str, folder: Path, model_dir: Path, tmp_path: Path) -> None:
    ray_args = ["--engine", "ray", "--report", "csv"]
    result = invoke([str(folder / "muted.jpg"), str(folder / "grey.png"), *ray_args], model_dir)
    assert result.exit_code == 0, result.output  # nothing flagged
    only_bad = [str(folder / "text.jpg"), str(folder / "empty.jpg"), *ray_args]
    assert invoke(only_bad, model_dir).exit_code == 0  # unreadable files are rows, not a failure
    result = invoke([*only_bad, "--fail-on-error"], model_dir)
    assert result.exit_code == 1 and "2 errors" in result.stderr
    result = invoke([str(folder), "--engine", "ray", "--report", "parquet"], model_dir)
    assert result.exit_code == 2 and "--report parquet needs -o" in result.stderr
    result = invoke([str(folder), "--engine", "ray", "--device", "cuda"], model_dir)
    assert result.exit_code == 2 and "the Ray cluster has no GPUs" in result.stderr
    result = invoke([str(folder), "--engine", "ray", "--workers", "2"], model_dir)
    assert result.exit_code == 2 and "--workers 2 needs 3 CPUs" in result.stderr  # never a hang
    result = invoke([str(tmp_path / "typo"), "--engine", "ray"], model_dir)
    assert result.exit_code == 2 and "no such file or directory" in result.stderr


def test_unreachable_cluster_is_one_line(folder: Path, model_dir: Path, tmp_path: Path) -> None:
    """Nothing listens at the address: exit 2 at once, before any report, no Ray retries."""
    from fixtures_engines import free_port

    address = f"127.0.0.1:{free_port()}"
    args = [str(folder), "--model", str(model_dir), "--engine", "ray", "--ray-address", address]
    proc = _driver([*args, "-o", str(tmp_path / "out.csv")], {})
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"imgcheck scan: error: no Ray cluster answers at {address}" in stderr.decode()
    assert not (tmp_path / "out.csv").exists()


def test_parquet_file_and_folder(
    cluster: str, folder: Path, model_dir: Path, local_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    def as_csv(table: object) -> list[dict[str, str]]:
        out = []
        for row in table.to_pylist():  # type: ignore[attr-defined]
            cells = {k: "" if v is None else str(v) for k, v in row.items() if k in local_rows[0]}
            cells["score"] = "" if row["score"] is None else f"{row['score']:.6f}"
            out.append(cells)
        return out

    want = local_rows  # paths: both escape a non-UTF-8 name as \xNN
    one = tmp_path / "scan.parquet"
    result = invoke([str(folder), "--engine", "ray", "-o", str(one)], model_dir)
    assert result.exit_code == 1, result.output
    table = pq.read_table(one)
    assert table.schema.metadata[b"imgcheck.schema_version"] == b"1"
    assert_same_rows(as_csv(table), want)
    parts = tmp_path / "parts"
    result = invoke([str(folder), "--engine", "ray", "-f", "parquet", "-o", str(parts)], model_dir)
    assert result.exit_code == 1, result.output
    assert (parts / "_SUCCESS").is_file() and list(parts.glob("part-*.parquet"))
    got = sorted(as_csv(pq.read_table(parts)), key=lambda r: r["path"])
    assert_same_rows(got, sorted(want, key=lambda r: r["path"]))
    # The local engine writes the same parquet folder.
    again = tmp_path / "parts-local"
    assert invoke([str(folder), "-f", "parquet", "-o", str(again)], model_dir).exit_code == 1
    local = sorted(as_csv(pq.read_table(again)), key=lambda r: r["path"])
    assert_same_rows(local, got)


def test_html_report_same_as_local(
    cluster: str, folder: Path, model_dir: Path, tmp_path: Path
) -> None:
    """Thumbnails and heatmaps come back from the workers: the same HTML as the local engine's
    (but for the time stamps)."""
    import re

    inputs = [str(folder / n) for n in ("colour.png", "muted.jpg", "grey.png", "text.jpg")]
    pages = {}
    for engine in ("local", "ray"):
        target = tmp_path / f"{engine}.html"
        assert invoke([*inputs, "--engine", engine, "-o", str(target)], model_dir).exit_code == 1
        text = target.read_text(encoding="utf-8")
        pages[engine] = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC|[0-9.]+ (s|img/s|images/s)\b", "", text)
    assert pages["ray"] == pages["local"] and pages["ray"].count("data:image/jpeg") == 3


def _driver(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "imgcheck", "scan", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_resume_after_the_driver_is_killed(
    cluster: str, model_dir: Path, tmp_path: Path
) -> None:
    from imgcheck.reports.parquet import iter_rows

    images = tmp_path / "many"
    images.mkdir()
    for i in range(40):
        Image.fromarray(colourful(64 + i, 64, seed=i)).save(images / f"img_{i:02d}.png")
    (images / "bad.jpg").write_bytes(b"junk")
    total = 41
    want = csv_rows(invoke([str(images), "-f", "csv"], model_dir).stdout)
    out = tmp_path / "out.csv"
    journal = tmp_path / ".out.csv.imgcheck-resume"
    args = [str(images), "--model", str(model_dir), "--engine", "ray", "--ray-address", cluster]
    args += ["-o", str(out), "--batch-size", "1", "-q"]
    proc = _driver(args, {"IMGCHECK_PART_ROWS": "1"})  # a part per row: a kill loses little
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(list(journal.glob("part-*.parquet"))) < 3:
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        time.sleep(0.02)
    assert proc.poll() is None, "the driver finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert not out.exists()  # the report is written at the end, atomically
    saved = [r.path for r in iter_rows([journal])]
    assert 0 < len(saved) < total and len(set(saved)) == len(saved)

    rerun = [str(images), "--engine", "ray", "-o", str(out), "--batch-size", "1", "-q"]
    result = invoke(rerun, model_dir)
    assert result.exit_code == 1, result.output
    assert f"{len(saved)} rows from the interrupted run, {total - len(saved)} scanned now" in (
        result.stderr
    )
    got = csv_rows(out.read_text(encoding="utf-8"))
    assert len(got) == total and len({r["path"] for r in got}) == total  # none lost, none twice
    assert_same_rows(got, want)
    assert not journal.exists()  # done: the journal goes away with the finished report

    # A rerun of a finished scan is a new scan, not a resume.
    result = invoke([str(images), "--engine", "ray", "-o", str(out), "-q"], model_dir)
    assert result.exit_code == 1 and "resumed" not in result.stderr
    assert len(csv_rows(out.read_text(encoding="utf-8"))) == total


def test_resume_refuses_other_settings(
    cluster: str, folder: Path, model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "parts"
    (out).mkdir()
    (out / "_imgcheck.json").write_text('{"imgcheck_journal": 1, "threshold": 0.9}')
    result = invoke([str(folder), "--engine", "ray", "-f", "parquet", "-o", str(out)], model_dir)
    assert result.exit_code == 2 and "unfinished scan with other settings" in result.stderr
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = invoke([str(folder), "-f", "parquet", "-o", str(foreign)], model_dir)
    assert result.exit_code == 2 and "not an imgcheck parquet folder" in result.stderr
    assert (foreign / "notes.txt").read_text() == "mine"


def test_bucket_on_s3_same_rows_as_disk(cluster: str, model_dir: Path, tmp_path: Path) -> None:
    disk = awkward_folder(tmp_path / "disk", local_only=False)
    want = csv_rows(invoke([str(disk), "-f", "csv"], model_dir).stdout)
    with s3_server() as endpoint:
        upload(disk, endpoint, "engine-ray", "catalog/2026")
        # A fresh driver: the endpoint and keys reach the Ray workers from its environment.
        args = ["s3://engine-ray/catalog/2026", "--model", str(model_dir), "--engine", "ray"]
        proc = _driver([*args, "--ray-address", cluster, "-f", "csv"], s3_settings(endpoint))
        stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr.decode()[-3000:]
    assert_same_rows(csv_rows(stdout.decode()), want, path_map=(str(disk), "s3://engine-ray/catalog/2026"))


def test_a_dead_recorded_cluster_does_not_hang(model_dir: Path, tmp_path: Path) -> None:
    """No address: Ray joins the cluster `ray start` last recorded on this machine and, if that
    one is gone, waits for it forever. The engine starts its own instance instead."""
    import shutil
    import tempfile

    from fixtures_engines import free_port

    ray_tmp = Path(tempfile.mkdtemp(prefix="r", dir="/tmp"))  # short: Ray's socket paths
    try:
        (ray_tmp / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
        Image.fromarray(colourful(seed=3)).save(tmp_path / "a.png")
        args = [str(tmp_path / "a.png"), "--model", str(model_dir), "--engine", "ray", "-f", "csv"]
        proc = _driver(args, {"RAY_TMPDIR": str(ray_tmp)})
        try:
            stdout, stderr = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        assert proc.returncode == 1, stderr.decode()[-2000:]
        assert "a.png,ok," in stdout.decode()
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
