"""`imgcheck scan` as a CI gate (issue 14): config, baseline, github annotations, repo walks,
empty scans, SARIF that code scanning maps (validated against the official SARIF 2.1.0 schema),
stable machine-readable outputs and HEIC/AVIF.

Everything runs against a tiny fake detector (tests/fixtures_onnx.py: colourful images are
flagged, muted ones are real) and real git repositories in temporary folders.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from fixtures_cli import run_cli
from fixtures_onnx import colourful, muted, write_model_folder
from PIL import Image

from imgcheck import baseline as baseline_mod
from imgcheck import ignore

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("model") / "m")


pytestmark = pytest.mark.usefixtures("no_imgcheck_env")


def invoke(args: list[str], model_dir: Path | None = None, **kwargs: object):
    extra = ["--model", str(model_dir)] if model_dir else []
    result = run_cli(["scan", *extra, "--workers", "1", *args], **kwargs)  # type: ignore[arg-type]
    assert "Traceback" not in result.output, result.output
    return result


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    out = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def save(path: Path, flagged: bool, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(colourful(seed=seed) if flagged else muted(seed=seed)).save(path)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    return root


# --- configuration ---------------------------------------------------------------------------


def test_config_found_walking_up_and_overridden(
    repo: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(repo / "assets" / "a.png", flagged=True)
    save(repo / "assets" / "b.png", flagged=False)
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.imgcheck]\npaths = ["assets"]\nthreshold = 1.0\n'
        'report = "jsonl"\nfail-on-empty = true\n'
    )
    sub = repo / "docs" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    # paths come from the config, relative to its folder; threshold 1.0 flags nothing.
    result = invoke([], model_dir)
    assert result.exit_code == 0, result.output
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(os.path.basename(r["path"]) for r in got) == ["a.png", "b.png"]
    assert os.path.isfile(got[0]["path"])  # usable from the working folder
    # Environment overrides the file, the command line overrides both.
    monkeypatch.setenv("IMGCHECK_THRESHOLD", "0.5")
    assert invoke([], model_dir).exit_code == 1
    assert invoke(["--threshold", "1.0"], model_dir).exit_code == 0
    shown = invoke(["--show-settings", "--threshold", "0.7"], model_dir)
    assert shown.exit_code == 0
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()[1:]}
    assert str(repo / "pyproject.toml") in shown.stdout.splitlines()[0]
    assert "0.7" in lines["threshold"] and "command line" in lines["threshold"]
    assert "jsonl" in lines["report"] and str(repo / "pyproject.toml") in lines["report"]
    assert "default" in lines["variant"] and "fail-on-empty" in lines


def test_imgcheck_toml_wins_and_unknown_keys_are_named(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(tmp_path / "a.png", flagged=True)
    (tmp_path / "pyproject.toml").write_text("[tool.imgcheck]\nthreshold = 0.99\n")
    (tmp_path / "imgcheck.toml").write_text("threshold = 0.2\n")
    monkeypatch.chdir(tmp_path)
    assert invoke(["a.png"], model_dir).exit_code == 1  # imgcheck.toml's 0.2, not 0.99
    (tmp_path / "imgcheck.toml").write_text("treshold = 0.2\n")
    result = invoke(["a.png"], model_dir)
    assert result.exit_code == 2
    assert "unknown key 'treshold'" in result.stderr and "imgcheck.toml" in result.stderr
    (tmp_path / "imgcheck.toml").write_text('threshold = "high"\n')
    result = invoke(["a.png"], model_dir)
    assert result.exit_code == 2 and "threshold must be a number" in result.stderr
    (tmp_path / "imgcheck.toml").unlink()
    monkeypatch.setenv("IMGCHECK_FAIL_ON_EMPTY", "maybe")
    result = invoke(["a.png"], model_dir)
    assert result.exit_code == 2 and "IMGCHECK_FAIL_ON_EMPTY" in result.stderr


def test_no_paths_anywhere_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    result = invoke([])
    assert result.exit_code == 2 and "no paths to scan" in result.stderr


# --- baseline --------------------------------------------------------------------------------


def test_baseline_accepts_by_content_and_reports_stale(
    repo: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    save(repo / "img" / "old.png", flagged=True, seed=1)
    save(repo / "img" / "real.png", flagged=False)
    written = invoke(["img", "--write-baseline", "imgcheck-baseline.json"], model_dir)
    assert written.exit_code == 0, written.output
    text = (repo / "imgcheck-baseline.json").read_text()
    doc = json.loads(text)
    assert doc["imgcheck_baseline"] == 1 and doc["model"]["sha256"]
    (entry,) = doc["findings"]
    assert entry["path"] == "img/old.png" and entry["rule"] == "IMG001"
    assert entry["sha256"] == baseline_mod.content_sha256(str(repo / "img" / "old.png"))
    # Diffable: one finding per line, and rewriting the same tree gives the same bytes.
    assert any(line.strip().startswith('{"path": "img/old.png"') for line in text.splitlines())
    invoke(["img", "--write-baseline", "imgcheck-baseline.json"], model_dir)
    assert (repo / "imgcheck-baseline.json").read_text() == text

    assert invoke(["img"], model_dir).exit_code == 1
    accepted = invoke(["img", "--baseline", "imgcheck-baseline.json"], model_dir)
    assert accepted.exit_code == 0, accepted.output
    assert "1 colorized (1 accepted by the baseline)" in accepted.stderr
    # Renamed: still accepted (content hash), and the old path is not stale.
    (repo / "img" / "old.png").rename(repo / "img" / "moved.png")
    moved = invoke(["img", "--baseline", "imgcheck-baseline.json"], model_dir)
    assert moved.exit_code == 0 and "stale" not in moved.stderr
    # A new flagged image fails the run; the accepted one still does not.
    save(repo / "img" / "new.png", flagged=True, seed=7)
    result = invoke(["img", "--baseline", "imgcheck-baseline.json", "-f", "github"], model_dir)
    assert result.exit_code == 1
    assert "img/new.png" in result.stdout and "moved.png" not in result.stdout
    # Replaced under the same name: a new finding, and the entry is stale.
    (repo / "img" / "new.png").unlink()
    (repo / "img" / "moved.png").unlink()
    save(repo / "img" / "old.png", flagged=True, seed=9)
    replaced = invoke(["img", "--baseline", "imgcheck-baseline.json"], model_dir)
    assert replaced.exit_code == 1
    assert "stale baseline entry img/old.png" in replaced.stderr


def test_baseline_errors_exit_2(tmp_path: Path, model_dir: Path) -> None:
    save(tmp_path / "a.png", flagged=True)
    result = invoke([str(tmp_path), "--baseline", str(tmp_path / "missing.json")], model_dir)
    assert result.exit_code == 2 and "--write-baseline" in result.stderr
    (tmp_path / "bad.json").write_text('{"something": 1}')
    result = invoke([str(tmp_path), "--baseline", str(tmp_path / "bad.json")], model_dir)
    assert result.exit_code == 2 and "not an imgcheck baseline" in result.stderr


# --- github annotations ---------------------------------------------------------------------


def test_github_annotations_escaped_and_repo_relative(
    repo: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(repo / "a,b:c.png", flagged=True)
    save(repo / "ok.png", flagged=False)
    (repo / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    sub = repo / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    result = invoke(["..", "-f", "github"], model_dir)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    error = next(line for line in lines if line.startswith("::error "))
    assert error.startswith("::error title=imgcheck IMG001 (colorized image),file=a%2Cb%3Ac.png,")
    assert "line=1::Image looks AI-colorized: score" in error
    warning = next(line for line in lines if line.startswith("::warning "))
    assert "file=broken.jpg" in warning and "Image could not be read" in warning
    assert lines[-1].startswith("::notice title=imgcheck::imgcheck: 3 images, 1 flagged")
    assert not any("ok.png" in line for line in lines)


def test_github_escapes_newlines_in_names(tmp_path: Path) -> None:
    from imgcheck.reports import open_reporter
    from imgcheck.results import ScanResult, Status, Summary, Verdict

    stream = io.StringIO()
    reporter = open_reporter("github", stream, threshold=0.5)
    reporter.add(ScanResult("x\n::error::pwned%.png", Status.OK, 0.9, Verdict.COLORIZED))
    reporter.finish(Summary(total=1))
    first = stream.getvalue().splitlines()[0]
    assert "x%0A%3A%3Aerror%3A%3Apwned%25.png" in first and len(stream.getvalue().splitlines()) == 2


# --- walking like a repo tool ----------------------------------------------------------------


def test_gitignore_and_skipped_folders(
    repo: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for rel in (
        "keep.png",
        "build/out.png",
        "cache.tmp.png",
        "wanted.tmp.png",
        "sub/local.png",
        "sub/other.png",
        "node_modules/pkg/logo.png",
        "env/lib/x.png",
        "deep/a/b/c.png",
    ):
        save(repo / rel, flagged=False)
    (repo / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (repo / ".gitignore").write_text("build/\n*.tmp.png\n!wanted.tmp.png\n/deep/**/c.png\n")
    (repo / "sub" / ".gitignore").write_text("local.png\n")
    monkeypatch.chdir(repo)

    def names(*args: str) -> list[str]:
        result = invoke([".", *args], model_dir)
        assert result.exit_code == 0, result.output
        return sorted(os.path.normpath(r["path"]) for r in rows(result.stdout))

    assert names() == ["keep.png", "sub/other.png", "wanted.tmp.png"]
    assert names("--no-ignore") == [
        "build/out.png",
        "cache.tmp.png",
        "deep/a/b/c.png",
        "keep.png",
        "sub/local.png",
        "sub/other.png",
        "wanted.tmp.png",
    ]  # node_modules and the virtual environment stay skipped
    # Explicit paths are always scanned; glob results respect .gitignore.
    assert len(rows(invoke(["build/out.png"], model_dir).stdout)) == 1
    assert rows(invoke(["build/*.png"], model_dir).stdout) == []


def test_gitignore_rules_unit() -> None:
    pats = ignore.parse("# c\n\\#hash.png\n*.log\n!keep.log\nlogs/\n/root.png\na/**/z.png\n")
    assert len(pats) == 6
    assert ignore.parse("  \n") == []


def test_empty_scan_says_so_and_fail_on_empty(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images")
    result = invoke([str(tmp_path)], model_dir)
    assert result.exit_code == 0 and "no images found in" in result.stderr
    result = invoke([str(tmp_path), "--fail-on-empty"], model_dir)
    assert result.exit_code == 1 and "--fail-on-empty" in result.stderr
    assert invoke([str(tmp_path), "--fail-on-empty", "--exit-zero"], model_dir).exit_code == 0


# --- SARIF for code scanning ------------------------------------------------------------------


def _validate_sarif(doc: dict) -> None:
    jsonschema = pytest.importorskip(
        "jsonschema",
        reason="jsonschema is not installed (the test extra)",
        exc_type=ModuleNotFoundError,
    )
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def test_committed_schema_is_the_official_one() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    assert len(schema["definitions"]) == 52 and "result" in schema["definitions"]


def test_sarif_validates_and_maps_onto_the_repo(
    repo: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(repo / "assets" / "x y.png", flagged=True, seed=1)
    save(repo / "assets" / "real.png", flagged=False)
    (repo / "assets" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    work = repo / "tools"
    work.mkdir()
    monkeypatch.chdir(work)  # not the repo root: URIs must still be relative to it
    out = repo / "out.sarif"
    assert invoke(["../assets", "-o", str(out)], model_dir).exit_code == 1
    doc = json.loads(out.read_text(encoding="utf-8"))
    _validate_sarif(doc)
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["informationUri"] == "https://pypi.org/project/imgcheck-colorize/"
    assert "pypi.org/project/imgcheck/" not in out.read_text()
    for rule in driver["rules"]:
        assert rule["help"]["text"] and rule["help"]["markdown"] and rule["helpUri"]
    assert "--write-baseline" in driver["rules"][0]["help"]["text"]
    assert run["properties"]["schema_version"] == 1
    model = run["invocations"][0]["properties"]["model"]
    assert set(model) == {"name", "sha256", "variant"} and os.sep not in model["name"]
    assert len(model["sha256"]) == 64
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r for r in run["results"]
    }
    assert set(uris) == {"assets/x%20y.png", "assets/bad.png"}
    flagged = uris["assets/x%20y.png"]
    assert flagged["baselineState"] == "new"
    content = baseline_mod.content_sha256(str(repo / "assets" / "x y.png"))
    assert flagged["properties"]["sha256"] == content
    first_fp = flagged["partialFingerprints"]["imgcheck/v2"]
    # Same image again: same fingerprint. Replaced under the same name: a new one.
    invoke(["../assets", "-o", str(out)], model_dir)
    again = json.loads(out.read_text())["runs"][0]["results"]
    assert first_fp in {r["partialFingerprints"]["imgcheck/v2"] for r in again}
    save(repo / "assets" / "x y.png", flagged=True, seed=5)
    invoke(["../assets", "-o", str(out)], model_dir)
    replaced = json.loads(out.read_text())["runs"][0]["results"]
    assert first_fp not in {r["partialFingerprints"]["imgcheck/v2"] for r in replaced}


def test_sarif_marks_baselined_results_suppressed(
    repo: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    save(repo / "a.png", flagged=True)
    invoke([".", "--write-baseline", "b.json"], model_dir)
    result = invoke([".", "--baseline", "b.json", "-f", "sarif"], model_dir)
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    _validate_sarif(doc)
    (res,) = doc["runs"][0]["results"]
    assert res["baselineState"] == "unchanged" and res["suppressions"][0]["kind"] == "external"


def test_json_and_jsonl_name_the_model_without_a_path(tmp_path: Path, model_dir: Path) -> None:
    save(tmp_path / "a.png", flagged=True)
    doc = json.loads(invoke([str(tmp_path), "-f", "json"], model_dir).stdout)
    assert doc["schema_version"] == 1
    assert doc["model"]["name"] == "detector.onnx" and len(doc["model"]["sha256"]) == 64
    assert str(model_dir) not in json.dumps(doc["model"])
    assert set(doc["summary"]["by_status"]) == {"ok", "grayscale", "too_small", "error"}
    line = json.loads(invoke([str(tmp_path), "-f", "jsonl"], model_dir).stdout.splitlines()[0])
    assert line["schema_version"] == 1


# --- formats people bring ----------------------------------------------------------------------


def test_heic_and_avif(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import features

    from imgcheck import plugins
    from imgcheck.decode import decode

    heic = tmp_path / "phone.heic"
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        Image.fromarray(colourful(seed=3)).save(heic, format="HEIF")
    except Exception:  # pillow-heif missing or without an encoder: craft the header only
        heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    else:
        got = rows(invoke([str(heic)], model_dir).stdout)[0]
        assert got["status"] == "ok" and got["format"] == "HEIF"
    if features.check("avif"):
        avif = tmp_path / "new.avif"
        Image.fromarray(colourful(seed=4)).save(avif, quality=90)
        got = rows(invoke([str(avif)], model_dir).stdout)[0]
        assert got["status"] == "ok" and got["format"] == "AVIF"

    # Where no plugin reads the file: an error row naming the extra to install.
    fake = tmp_path / "nolib.heic"
    fake.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    from PIL import Image as PILImage

    def unidentified(*args: object, **kwargs: object) -> None:
        raise PILImage.UnidentifiedImageError("cannot identify")

    monkeypatch.setattr(PILImage, "open", unidentified)
    failure = decode(fake)
    assert not failure.ok and "imgcheck-colorize[heif]" in failure.error
    assert plugins.missing_message(b"\x00\x00\x00\x1cftypavif" + b"\x00" * 8).startswith("AVIF")
    assert plugins.missing_message(b"\x89PNG\r\n\x1a\n") is None


# --- packaging, hook and action files -----------------------------------------------------------


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_distribution_name_is_free_of_the_unrelated_imgcheck() -> None:
    project = _pyproject()["project"]
    assert project["name"] == "imgcheck-colorize"
    assert project["scripts"] == {"imgcheck": "imgcheck.cli:main"}
    test_extra = " ".join(project["optional-dependencies"]["test"])
    assert "pre-commit" in test_extra and "jsonschema" in test_extra
    assert any(d.startswith("pillow-heif") for d in project["optional-dependencies"]["heif"])


def test_pre_commit_hook_and_action_definitions() -> None:
    yaml = pytest.importorskip(
        "yaml",
        reason="yaml is not installed (the test extra (pre-commit))",
        exc_type=ModuleNotFoundError,
    )
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "imgcheck" and hook["language"] == "python"
    assert hook["types"] == ["image"] and hook["entry"].startswith("imgcheck scan")
    assert any(d.startswith("onnxruntime") for d in hook["additional_dependencies"])
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    scripts = " ".join(s.get("run", "") for s in steps)
    assert "[cpu]" in scripts and "--report sarif" in scripts
    assert any("upload-sarif" in s.get("uses", "") for s in steps)
    # Inputs never pasted into scripts (injection): they arrive through env.
    assert "${{ inputs." not in scripts


def test_too_small_images_do_not_fail_the_gate_and_min_side_is_configurable(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder whose only colourful image is a 40-px thumbnail passes (it is not judged) and
    says so; `--min-side` or `min-side` in pyproject.toml brings it back under the detector."""
    Image.fromarray(colourful(40, 40)).save(tmp_path / "thumb.png")
    monkeypatch.chdir(tmp_path)
    result = invoke(["."], model_dir)
    assert result.exit_code == 0
    (row,) = rows(result.stdout)
    assert (row["status"], row["verdict"], row["score"]) == ("too_small", "n/a", "")
    assert "1 too small (n/a)" in result.stderr
    assert invoke([".", "--min-side", "8"], model_dir).exit_code == 1
    (tmp_path / "pyproject.toml").write_text("[tool.imgcheck]\nmin-side = 8\n")
    again = invoke(["."], model_dir)
    assert again.exit_code == 1 and rows(again.stdout)[0]["status"] == "ok"
