"""The pre-commit hook for real: `pre-commit try-repo` of this repository in a temporary git repo
holding a colorized and a real photo from examples/catalog, with the shipped default model.

pre-commit builds the hook's own virtual environment (`pip install` of this repository plus the
hook's declared `onnxruntime`), so this needs the package index and takes a minute or two. It
uses this repository's HEAD commit (`--ref`): uncommitted edits in a shared working tree could
name files that are not committed yet. In CI the checkout is HEAD anyway.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "examples" / "catalog"


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.slow
def test_pre_commit_try_repo_flags_the_colorized_image(tmp_path: Path) -> None:
    pytest.importorskip(
        "pre_commit",
        reason="pre_commit is not installed (the test extra)",
        exc_type=ModuleNotFoundError,
    )
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of imgcheck")
    colorized, real = CATALOG / "colorized-01.jpg", CATALOG / "real-02.jpg"
    if not (colorized.exists() and real.exists()):
        pytest.skip("examples/catalog is not in this checkout")
    head = _git(ROOT, "rev-parse", "HEAD")
    hooks = _git(ROOT, "show", f"{head}:.pre-commit-hooks.yaml")
    assert "id: imgcheck" in hooks

    repo = tmp_path / "project"
    (repo / "img").mkdir(parents=True)
    _git(repo, "init", "-q")
    shutil.copy(colorized, repo / "img" / "colorized.jpg")
    shutil.copy(real, repo / "img" / "real.jpg")
    _git(repo, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    env = {k: v for k, v in env.items() if not k.startswith("IMGCHECK_")}
    env.pop("VIRTUAL_ENV", None)

    def try_repo() -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "imgcheck"]
        cmd += ["--ref", head, "--all-files", "--color", "never"]
        return subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=900)

    found = try_repo()
    output = found.stdout + found.stderr
    assert found.returncode == 1, output
    assert "Failed" in output and "- exit code: 1" in output
    assert "img/colorized" in output  # the table row (the path may wrap at 80 columns)
    # The summary line: both images were scanned, the colorized one flagged.
    assert "imgcheck: 2 images" in output and "1 colorized, 1 real" in output

    (repo / "img" / "colorized.jpg").unlink()
    _git(repo, "add", "-A")
    clean = try_repo()
    output = clean.stdout + clean.stderr
    assert clean.returncode == 0, output
    assert "Passed" in output
