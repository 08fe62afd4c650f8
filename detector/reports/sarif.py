"""SARIF 2.1.0, so CI code-scanning tools (GitHub code scanning, Azure DevOps, ...) show findings
on image assets next to code findings.

- ``tool.driver``: name ``imgcheck``, version, and two rules: ``IMG001`` (image looks
  AI-colorized, level ``error``) and ``IMG002`` (image could not be read, level ``warning``).
- One result per flagged image (IMG001, message with score and threshold) and one per
  unreadable image (IMG002). Errors are *results*, not tool notifications, because code
  scanning UIs list results but hide notifications; a broken asset is worth seeing.
- Locations: ``artifactLocation.uri`` is the path relative to the working folder (the repository
  root in CI) with ``uriBaseId`` ``%SRCROOT%``, forward slashes, percent-encoded from the file
  name's real bytes (so non-UTF-8 names survive exactly). Paths outside the working folder
  become absolute ``file://`` URIs. ``region.startLine`` 1 is set because GitHub places a result
  only with a line; for an image it means "the file".
- ``partialFingerprints`` are derived from rule and path, so alerts stay stable across runs and
  GitHub does not try to fingerprint binary files by their "lines".
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
from imgcheck.detector.reports.base import finite, fmt_score, summary_dict
from imgcheck.detector.reports.cells import safe_text
from imgcheck.detector.results import ScanResult, Status, Summary

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
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
        "help": {
            "text": "Check the image's provenance. If it is a genuine colour photo, raise the "
            "threshold or exclude the file; if it was colorized, label or replace it."
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
        "help": {"text": "Repair or remove the file, or exclude it from the scan."},
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


def artifact_location(path: str, root: str | None = None) -> dict[str, str]:
    """SARIF artifactLocation for a scanned path: relative + %SRCROOT% when under `root`."""
    root = os.path.abspath(root or os.getcwd())
    native = os.path.normpath(os.path.join(root, path))
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


def _fingerprint(rule: str, uri: str) -> str:
    return hashlib.sha256(f"{rule}\0{uri}".encode()).hexdigest()


class SarifReporter:
    needs_thumbnails = False

    def __init__(
        self, stream: TextIO, *, threshold: float | None, model: str | None = None
    ) -> None:
        self._stream = stream
        self._threshold = finite(threshold)
        self._model = model
        self._count = 0
        driver = {
            "name": "imgcheck",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": "https://pypi.org/project/imgcheck/",
            "rules": RULES,
        }
        head = (
            f'{{"$schema": {_dumps(SCHEMA)}, "version": "2.1.0", "runs": [{{'
            f'"tool": {{"driver": {_dumps(driver)}}}, '
            '"originalUriBaseIds": {"%SRCROOT%": {"description": {"text": "The folder imgcheck '
            'ran in; scanned paths are relative to it."}}}, '
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
        location = artifact_location(r.path)
        props: dict[str, Any] = {"score": finite(r.score), "threshold": self._threshold}
        if r.width and r.height:
            props.update(width=r.width, height=r.height)
        if r.format:
            props["format"] = safe_text(r.format)
        return {
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
            "partialFingerprints": {"imgcheck/v1": _fingerprint(rule, location["uri"])},
            "properties": props,
        }

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
        self._stream.write(f'], "invocations": [{_dumps(invocation)}]}}]}}\n')
        self._stream.flush()
