"""SARIF 2.1.0, so CI code-scanning tools (GitHub code scanning, Azure DevOps, ...) show findings
on image assets next to code findings.

- ``tool.driver``: name ``imgcheck``, version, and two rules: ``IMG001`` (image looks
  AI-colorized, level ``error``) and ``IMG002`` (image could not be read, level ``warning``).
- One result per flagged image (IMG001, message with score and threshold) and one per
  unreadable image (IMG002). Errors are *results*, not tool notifications, because code
  scanning UIs list results but hide notifications; a broken asset is worth seeing.
- Locations: ``artifactLocation.uri`` is the path relative to the repository root (the git top
  level above the working folder, else the working folder) with ``uriBaseId`` ``%SRCROOT%``,
  whatever folder imgcheck ran in, so code scanning maps it onto the repository's files. Forward
  slashes, percent-encoded from the file name's real bytes (so non-UTF-8 names survive exactly).
  Paths outside the root become absolute ``file://`` URIs. ``region.startLine`` 1 is set because
  GitHub places a result only with a line; for an image it means "the file".
- ``partialFingerprints["imgcheck/v2"]`` hashes rule, path and the file's **content** sha256
  (also in ``properties.sha256``): a rescan of the same image is the same alert, an image replaced
  under the same name is a new one, and GitHub never fingerprints a binary file by "lines".
- A flagged image the ``--baseline`` accepts carries ``baselineState: "unchanged"`` and an
  external suppression, so code scanning shows it as accepted instead of open.
- ``informationUri`` and each rule's ``helpUri`` point to this project's distribution,
  ``imgcheck-colorize`` (the PyPI name ``imgcheck`` belongs to an unrelated project).
- Run ``properties.schema_version`` versions our own additions (see `base.SCHEMA_VERSION`); the
  invocation's properties hold the model (name, sha256, variant) and the summary.
- Streamed: results are written as they come; the invocation and summary close the document.
- GitHub accepts at most 25,000 results per run (and shows the 5,000 most severe); a scan with
  more flagged images than that is better gated on the exit code and read in csv/html.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, TextIO
from urllib.parse import quote

from imgcheck import __version__
from imgcheck.reports.base import SCHEMA_VERSION, finite, fmt_score, summary_dict
from imgcheck.reports.cells import safe_text
from imgcheck.results import ScanResult, Status, Summary

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/imgcheck-colorize/"
COLORIZED_RULE = "IMG001"
UNREADABLE_RULE = "IMG002"

RULES: list[dict[str, Any]] = [
    {
        "id": COLORIZED_RULE,
        "name": "ColorizedImage",
        "shortDescription": {"text": "Image looks AI-colorized"},
        "fullDescription": {
            "text": "The detector's calibrated probability that this image is a grayscale photo "
            "colorized by a neural network is at or above the threshold."
        },
        "helpUri": INFORMATION_URI,
        "help": {
            "text": "Check where the image came from. If it was colorized, replace it with the "
            "original or label it as colorized. If it is a genuine colour photo (or a colorized "
            "image you accept), record it in the baseline: imgcheck scan PATHS --write-baseline "
            "imgcheck-baseline.json, then scan with --baseline imgcheck-baseline.json; a renamed "
            "file stays accepted, a replaced one is checked again. To tune the gate, set "
            "threshold or exclude in [tool.imgcheck] of pyproject.toml.",
            "markdown": "Check where the image came from.\n\n"
            "* **Colorized:** replace it with the original, or label it as colorized.\n"
            "* **Genuine colour photo, or a colorized image you accept:** record it in the "
            "baseline with `imgcheck scan PATHS --write-baseline imgcheck-baseline.json`, commit "
            "that file and scan with `--baseline imgcheck-baseline.json`. Entries are keyed by "
            "the file's content: a renamed image stays accepted, a replaced one is checked "
            "again.\n* **Tuning:** `threshold` or `exclude` in `[tool.imgcheck]` of "
            "`pyproject.toml`.",
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["image", "provenance", "colorization"], "precision": "medium"},
    },
    {
        "id": UNREADABLE_RULE,
        "name": "UnreadableImage",
        "shortDescription": {"text": "Image could not be read"},
        "fullDescription": {
            "text": "The file matched the scan but could not be decoded, so it was not checked."
        },
        "helpUri": INFORMATION_URI,
        "help": {
            "text": "Repair, re-export or remove the file, or exclude it from the scan. HEIC/HEIF "
            "images need the heif extra (pip install 'imgcheck-colorize[heif]').",
            "markdown": "Repair, re-export or remove the file, or `exclude` it from the scan. "
            "HEIC/HEIF images need the `heif` extra: `pip install 'imgcheck-colorize[heif]'`.",
        },
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["image", "reliability"], "precision": "very-high"},
    },
]


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _path_bytes(path: str) -> bytes:
    try:
        return path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that never was a byte (Windows names)
        return safe_text(path).encode("utf-8")


def artifact_location(
    path: str, root: str | None = None, *, cwd: str | None = None
) -> dict[str, str]:
    """SARIF artifactLocation for a scanned path: relative + %SRCROOT% when under `root`.

    A relative `path` is relative to `cwd` (default: the working folder); `root` defaults to
    the repository root above `cwd` (`baseline.repo_root`)."""
    cwd = os.path.abspath(cwd or os.getcwd())
    if root is None:
        from imgcheck.baseline import repo_root

        root = repo_root(cwd)
    root = os.path.abspath(root)
    native = os.path.normpath(os.path.join(cwd, path))
    try:
        rel = os.path.relpath(native, root)
    except ValueError:  # another drive on Windows
        rel = os.pardir
    if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
        posix = rel.replace(os.sep, "/")
        return {"uri": quote(_path_bytes(posix), safe="/"), "uriBaseId": "%SRCROOT%"}
    posix = native.replace(os.sep, "/")
    prefix = "file://" if posix.startswith("/") else "file:///"
    return {"uri": prefix + quote(_path_bytes(posix), safe="/:")}


def _fingerprint(rule: str, uri: str, content: str | None) -> str:
    return hashlib.sha256(f"{rule}\0{uri}\0{content or ''}".encode()).hexdigest()


def _content_hash(result: ScanResult) -> str | None:
    if result.sha256 is None:
        from imgcheck.baseline import content_sha256

        result.sha256 = content_sha256(result.path)
    return result.sha256


class SarifReporter:
    needs_thumbnails = False

    def __init__(
        self,
        stream: TextIO,
        *,
        threshold: float | None,
        model: dict[str, Any] | str | None = None,
        root: str | None = None,
    ) -> None:
        from imgcheck.baseline import repo_root

        self._stream = stream
        self._threshold = finite(threshold)
        self._model = model
        self._root = os.path.abspath(root) if root else repo_root()
        self._cwd = os.getcwd()
        self._count = 0
        driver = {
            "name": "imgcheck",
            "fullName": "imgcheck (imgcheck-colorize): AI-colorized image detector",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": INFORMATION_URI,
            "rules": RULES,
        }
        head = (
            f'{{"$schema": {_dumps(SCHEMA)}, "version": "2.1.0", "runs": [{{'
            f'"tool": {{"driver": {_dumps(driver)}}}, '
            '"originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The repository '
            'root (git top level); scanned paths are relative to it."}}}, '
            '"columnKind": "unicodeCodePoints", "results": ['
        )
        stream.write(head)
        stream.flush()

    def _result(self, r: ScanResult) -> dict[str, Any] | None:
        if r.flagged:
            rule, level = COLORIZED_RULE, "error"
            text = (
                f"Image looks AI-colorized: score {fmt_score(r.score)} >= threshold "
                f"{fmt_score(self._threshold)}."
            )
        elif r.status is Status.ERROR:
            rule, level = UNREADABLE_RULE, "warning"
            text = f"Image could not be read: {safe_text(r.error or 'unknown error')}"
        else:
            return None
        location = artifact_location(r.path, self._root, cwd=self._cwd)
        content = _content_hash(r)
        props: dict[str, Any] = {"score": finite(r.score), "threshold": self._threshold}
        if content:
            props["sha256"] = content
        if r.width and r.height:
            props.update(width=r.width, height=r.height)
        if r.format:
            props["format"] = safe_text(r.format)
        item: dict[str, Any] = {
            "ruleId": rule,
            "ruleIndex": 0 if rule == COLORIZED_RULE else 1,
            "level": level,
            "kind": "fail",
            "message": {"text": text},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": location,
                        "region": {"startLine": 1},
                    }
                }
            ],
            "partialFingerprints": {"imgcheck/v2": _fingerprint(rule, location["uri"], content)},
            "properties": props,
        }
        if r.flagged:
            item["baselineState"] = "unchanged" if r.baselined else "new"
        if r.baselined:
            item["suppressions"] = [
                {"kind": "external", "justification": "accepted in the imgcheck baseline"}
            ]
        return item

    def add(self, result: ScanResult) -> None:
        item = self._result(result)
        if item is None:
            return
        self._stream.write(("\n" if self._count == 0 else ",\n") + _dumps(item))
        self._count += 1
        self._stream.flush()

    def finish(self, summary: Summary) -> None:
        invocation = {
            "executionSuccessful": True,
            "properties": {"model": self._model, "summary": summary_dict(summary)},
        }
        props = {"schema_version": SCHEMA_VERSION}
        self._stream.write(
            f'], "invocations": [{_dumps(invocation)}], "properties": {_dumps(props)}}}]}}\n'
        )
        self._stream.flush()
