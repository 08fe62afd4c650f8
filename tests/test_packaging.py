"""The wheel is what users get: check it holds every module and the shipped models.

An editable install imports straight from the work tree and would hide a package missing from
pyproject's explicit list, so this builds a real wheel and looks inside.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {
    "detector": "imgcheck",
    "trainer": "imgcheck/trainer",
    "export": "imgcheck/export",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        cwd=out,
    )
    (built,) = out.glob("imgcheck_colorize-*.whl")  # distribution name: imgcheck-colorize
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_installed_wheel_runs_from_the_clone_root(wheel: Path, tmp_path: Path) -> None:
    """`python -m imgcheck` in a clone's root puts the root first on sys.path: no folder there
    may shadow the installed package (0.1 had an `imgcheck/` folder without `detector`)."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = (
        "import imgcheck, imgcheck.scanning, imgcheck.models; from imgcheck import scan; "
        "print(imgcheck.__file__)"
    )
    where = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site)
    version = subprocess.run(
        [sys.executable, "-m", "imgcheck", "--version"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("imgcheck ")


def test_wheel_holds_every_source_module(wheel_names: set[str]) -> None:
    missing = []
    for folder, installed in MAPPING.items():
        for src in (ROOT / folder).rglob("*.py"):
            rel = src.relative_to(ROOT / folder).as_posix()
            if f"{installed}/{rel}" not in wheel_names:
                missing.append(f"{folder}/{rel}")
    assert not missing, f"not in the wheel (add the package to pyproject): {missing}"


def test_wheel_installs_no_generic_top_level_names(wheel_names: set[str]) -> None:
    tops = {n.split("/", 1)[0] for n in wheel_names if "/" in n}
    assert tops <= {"imgcheck", *(t for t in tops if t.endswith(".dist-info"))}


def test_wheel_ships_the_models_listed_in_the_manifest(wheel_names: set[str]) -> None:
    import json

    manifest = ROOT / "detector" / "models" / "manifest.json"
    if not manifest.exists():
        pytest.skip("no shipped models yet")
    data = json.loads(manifest.read_text())
    files = [data[k]["file"] for k in ("detector", "colorizer")]
    files += [v["file"] for v in data.get("variants", {}).values()]
    for name in ["manifest.json", *files]:
        assert f"imgcheck/models/{name}" in wheel_names


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "<!-- test-command -->" in readme and "sed -n" in script
    extract = script.split("cmd=$(", 1)[1].split(")\n", 1)[0]
    got = subprocess.run(
        ["bash", "-c", extract], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    block = readme.split("<!-- test-command -->", 1)[1].split("<!-- /test-command -->", 1)[0]
    assert got.strip() and got.strip() in block


def test_dev_tools_are_pinned_and_the_test_command_uses_the_pins() -> None:
    """A new ruff rule or pytest release must not turn CI red without a change here."""
    from importlib.metadata import version

    pins = {}
    for line in (ROOT / "constraints-dev.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[name.strip()] = pinned.strip()
    assert set(pins) >= {"ruff", "pytest"} and all(pins.values())
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- test-command -->", 1)[1].split("<!-- /test-command -->", 1)[0]
    assert "pip install torch==2.13.0 && pip install -c constraints-dev.txt" in block
    assert block.strip().rstrip("`").strip().endswith("ruff check . && pytest -q")
    for name, pinned in pins.items():  # what runs here is what is pinned
        assert version(name) == pinned, (name, version(name), pinned)


def test_the_test_extra_runs_the_runtime_tests() -> None:
    """`pip install ".[cpu,test]"` is enough for every runtime test: onnx builds their models."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the tomli backport is a dependency there
        import tomli as tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(req.startswith("onnx>") for req in extras["test"])
