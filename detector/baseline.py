"""A baseline of accepted findings, like detect-secrets' `.secrets.baseline`.

`imgcheck scan PATHS --write-baseline imgcheck-baseline.json` records every image flagged now;
`imgcheck scan PATHS --baseline imgcheck-baseline.json` then fails only on images that are not
in it. Entries are keyed by the file's **content** (sha256), so a renamed or moved image stays
accepted and an image replaced under the same name does not.

The file is JSON meant to be reviewed in a pull request: one finding per line, sorted by path,
no timestamps (an unchanged tree rewrites the identical file)::

    {
      "imgcheck_baseline": 1,
      "tool": "imgcheck 0.1.0",
      "model": {"name": "detector.onnx", "sha256": "...", "variant": "fp32"},
      "threshold": 0.948,
      "findings": [
        {"path": "assets/old.jpg", "sha256": "...", "rule": "IMG001", "score": 0.965}
      ]
    }

`path` is relative to the repository root (git top level, else the working directory) and
only informs the reader and the stale check: an entry is *stale* when no flagged image has its
content any more and its path was scanned in this run or no longer exists (so a scan of a few
changed files does not call every other entry stale). Stale entries are reported, never fatal.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgcheck import __version__
from imgcheck.reports.cells import safe_text

FORMAT = 1
RULE = "IMG001"  # = reports.sarif.COLORIZED_RULE (the only rule a baseline accepts)


class BaselineError(ValueError):
    """An unreadable or malformed baseline file (exit 2)."""


def content_sha256(path: str) -> str | None:
    """sha256 of a regular file's bytes, or None (missing, a folder, a FIFO: never opened)."""
    import hashlib
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        h = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def repo_root(start: str | None = None) -> str:
    """The git top level above `start` (default: the working directory), else `start`."""
    from imgcheck.ignore import find_git_root

    start = os.path.abspath(start or os.getcwd())
    return find_git_root(start) or start


def repo_path(path: str, root: str) -> str:
    """`path` relative to `root` with forward slashes (absolute when outside it)."""
    full = os.path.abspath(path)
    try:
        rel = os.path.relpath(full, root)
    except ValueError:
        return full.replace(os.sep, "/")
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return full.replace(os.sep, "/")
    return rel.replace(os.sep, "/")


@dataclass(frozen=True)
class Finding:
    path: str  # repo-relative, posix
    sha256: str
    rule: str = RULE
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": safe_text(self.path), "sha256": self.sha256}
        out["rule"] = self.rule
        if self.score is not None:
            out["score"] = round(float(self.score), 3)
        return out


@dataclass
class Baseline:
    """Loaded entries plus what this run saw of them (for the stale report)."""

    path: str
    findings: list[Finding]
    _hashes: set[str] = field(default_factory=set, repr=False)
    _paths: set[str] = field(default_factory=set, repr=False)
    _matched: set[str] = field(default_factory=set, repr=False)
    _scanned: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self._hashes = {f.sha256 for f in self.findings}
        self._paths = {f.path for f in self.findings}

    def note_scanned(self, rel_path: str) -> None:
        """Record that `rel_path` (repo-relative) was scanned this run (bounded by the baseline)."""
        if rel_path in self._paths:
            self._scanned.add(rel_path)

    def accepts(self, sha256: str) -> bool:
        """True (and remembered) when a flagged image with this content is in the baseline."""
        if sha256 in self._hashes:
            self._matched.add(sha256)
            return True
        return False

    def stale(self, root: str) -> list[Finding]:
        """Entries no flagged image matched, whose path was scanned or is gone."""
        out = []
        for f in self.findings:
            if f.sha256 in self._matched:
                continue
            if f.path in self._scanned or not os.path.lexists(os.path.join(root, f.path)):
                out.append(f)
        return out


def load(path: str | os.PathLike[str]) -> Baseline:
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise BaselineError(
            f"baseline {path} does not exist (create it with --write-baseline {path})"
        ) from None
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BaselineError(f"baseline {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("imgcheck_baseline") != FORMAT:
        raise BaselineError(
            f'{path} is not an imgcheck baseline (expected "imgcheck_baseline": {FORMAT})'
        )
    findings = []
    for i, item in enumerate(data.get("findings") or []):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("sha256"), str)
            or not isinstance(item.get("path", ""), str)
        ):
            raise BaselineError(f"baseline {path}: finding {i} needs a sha256 and a path")
        score = item.get("score")
        findings.append(
            Finding(
                item.get("path", ""),
                item["sha256"].lower(),
                str(item.get("rule", RULE)),
                float(score) if isinstance(score, int | float) else None,
            )
        )
    return Baseline(path, findings)


def dumps(findings: list[Finding], *, model: dict[str, Any] | None, threshold: float | None) -> str:
    """The baseline document: stable key order, one finding per line, sorted, no duplicates."""
    unique = {(f.path, f.sha256, f.rule): f for f in findings}
    ordered = [unique[k] for k in sorted(unique)]
    head = {
        "imgcheck_baseline": FORMAT,
        "tool": f"imgcheck {__version__}",
        "model": model,
        "threshold": None if threshold is None else round(float(threshold), 6),
    }
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    if ordered:
        lines.append('  "findings": [')
        body = [
            "    " + json.dumps(f.to_dict(), ensure_ascii=False, allow_nan=False) for f in ordered
        ]
        lines.append(",\n".join(body))
        lines.append("  ]")
    else:
        lines.append('  "findings": []')
    lines.append("}")
    return "\n".join(lines) + "\n"


def write(
    path: str | os.PathLike[str],
    findings: list[Finding],
    *,
    model: dict[str, Any] | None,
    threshold: float | None,
) -> None:
    from imgcheck.atomic import atomic_write

    text = dumps(findings, model=model, threshold=threshold).encode("utf-8")
    atomic_write(Path(path), lambda fh: fh.write(text))


__all__ = [
    "Baseline",
    "BaselineError",
    "Finding",
    "content_sha256",
    "dumps",
    "load",
    "repo_path",
    "repo_root",
]
