"""URL inputs with the local engine (issue 13): a bucket on a real S3-compatible server (moto's,
on loopback) and file:// URLs give the rows of the same files on disk; bad URLs are usage
errors; and neither fsspec, pyarrow nor ray is imported unless asked for."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_engines import assert_same_rows, awkward_folder, csv_rows, s3_server, upload
from fixtures_onnx import write_model_folder
from typer.testing import CliRunner

from imgcheck.cli import app  # the registered root app, as users run it


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("model") / "m")


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return awkward_folder(tmp_path_factory.mktemp("disk") / "imgs", local_only=False)


def invoke(args: list[str], model_dir: Path) -> object:
    result = CliRunner().invoke(app, ["scan", "--model", str(model_dir), "-f", "csv", *args])
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, result.output
    return result


@pytest.fixture(scope="module")
def bucket(disk: Path) -> Iterator[str]:
    """s3://sources/catalog/2026 holding `disk`, with fsspec pointed at the server (what
    FSSPEC_S3_* environment variables set in a fresh process)."""
    pytest.importorskip(
        "s3fs", reason="s3:// needs s3fs (the ray extra)", exc_type=ModuleNotFoundError
    )
    import fsspec.config

    with s3_server() as endpoint:
        upload(disk, endpoint, "sources", "catalog/2026")
        saved = fsspec.config.conf.get("s3")
        fsspec.config.conf["s3"] = {"key": "testing", "secret": "testing", "endpoint_url": endpoint}
        try:
            yield "s3://sources/catalog/2026"
        finally:
            if saved is None:
                fsspec.config.conf.pop("s3", None)
            else:
                fsspec.config.conf["s3"] = saved


def test_bucket_gives_the_rows_of_disk(bucket: str, disk: Path, model_dir: Path) -> None:
    want = invoke([str(disk)], model_dir)
    got = invoke([bucket], model_dir)
    assert got.exit_code == want.exit_code == 1
    assert_same_rows(csv_rows(got.stdout), csv_rows(want.stdout), path_map=(str(disk), bucket))
    errors = {r["path"].rsplit("/", 1)[1]: r["error"] for r in csv_rows(got.stdout) if r["error"]}
    assert errors["empty.jpg"] == "empty file (0 bytes)"
    assert errors["text.jpg"] == "not an image, or a format Pillow cannot read"
    assert errors["truncated.jpg"].startswith("truncated or corrupt file")


def test_bucket_globs_filters_and_named_objects(bucket: str, disk: Path, model_dir: Path) -> None:
    names = lambda r: [Path(x["path"]).name for x in csv_rows(r.stdout)]  # noqa: E731
    assert names(invoke([f"{bucket}/sub/**/*.webp"], model_dir)) == ["colour2.webp"]
    assert names(invoke([bucket, "--exclude", "sub", "--include", "*.png"], model_dir)) == [
        "colour.png", "inside.png", "grey.png", "grey16.png", "palette.png", "rgba.png", "tiny.png",
    ]  # fmt: skip
    assert "deep" not in invoke([bucket, "--no-recursive"], model_dir).stdout.replace("folder", "")
    named = invoke([f"{bucket}/text.jpg", f"{bucket}/colour.png"], model_dir)
    assert [r["status"] for r in csv_rows(named.stdout)] == ["error", "ok"]
    result = invoke([f"{bucket}/nothing-here"], model_dir)
    assert result.exit_code == 2 and "no such object or prefix" in result.stderr


def test_python_api_takes_urls(bucket: str, disk: Path, model_dir: Path) -> None:
    from imgcheck import scan

    def rows(paths: list[str]) -> list[tuple[str, str, float | None]]:
        return [(Path(r.path).name, r.status.value, r.score) for r in scan(paths, model=model_dir)]

    want = rows([str(disk)])
    assert rows([bucket]) == want and rows([f"file://{disk}"]) == want


def test_file_urls_are_local_paths(disk: Path, model_dir: Path) -> None:
    want = csv_rows(invoke([str(disk)], model_dir).stdout)
    got = csv_rows(invoke([f"file://{disk}"], model_dir).stdout)
    assert_same_rows(got, want, path_map=(str(disk), f"file://{disk}"))
    result = invoke([f"file://{disk}/typo"], model_dir)
    assert result.exit_code == 2 and "no such file or directory" in result.stderr


def test_unusable_urls_are_usage_errors(model_dir: Path) -> None:
    pytest.importorskip(
        "fsspec", reason="URLs need fsspec (the ray extra)", exc_type=ModuleNotFoundError
    )
    result = invoke(["nosuchproto://x/y"], model_dir)
    assert result.exit_code == 2 and "nosuchproto" in result.stderr
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        result = invoke(["gs://bucket/photos"], model_dir)
        assert result.exit_code == 2 and "need gcsfs: pip install gcsfs" in result.stderr


_PROBE = """
import sys
from typer.testing import CliRunner
from imgcheck import cli
assert CliRunner().invoke(cli.app, ["--help"]).exit_code == 0
assert CliRunner().invoke(cli.app, ["scan", "--help"]).exit_code == 0
heavy = [m for m in ("ray", "pyarrow", "fsspec", "s3fs") if m in sys.modules]
result = CliRunner().invoke(cli.app, ["scan", sys.argv[1], "--model", sys.argv[2], "-f", "csv"])
assert result.exit_code == 1, result.output
heavy += [m + " (scan)" for m in ("ray", "pyarrow", "fsspec") if m in sys.modules]
print("HEAVY=" + ",".join(heavy))
"""


def test_help_and_local_scan_import_no_engine(disk: Path, model_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(disk), str(model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="
