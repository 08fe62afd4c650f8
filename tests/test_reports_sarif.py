"""SARIF 2.1.0 report: structure checked by hand (no schema download), URIs and levels."""

from __future__ import annotations

import io
import json
import os
from urllib.parse import unquote_to_bytes

import pytest
from fixtures_reports import flagged, sample_results, summary_of

from imgcheck import __version__
from imgcheck.reports import open_reporter
from imgcheck.reports.sarif import artifact_location as _artifact_location
from imgcheck.results import ScanResult, Status

LEVELS = {"none", "note", "warning", "error"}


def render(rows) -> dict:
    stream = io.StringIO()
    reporter = open_reporter("sarif", stream, threshold=0.5, model="default")
    for r in rows:
        reporter.add(r)
    reporter.finish(summary_of(rows))
    text = stream.getvalue()
    text.encode("utf-8")
    return json.loads(text)


def check_sarif_structure(doc: dict) -> None:
    """The SARIF 2.1.0 schema's required properties for what we emit, plus GitHub's needs."""
    assert doc["version"] == "2.1.0" and "sarif-2.1.0" in doc["$schema"]
    assert isinstance(doc["runs"], list) and len(doc["runs"]) == 1
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "imgcheck" and driver["version"] == __version__
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(set(rule_ids)) == len(rule_ids)
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["defaultConfiguration"]["level"] in LEVELS
    for res in run["results"]:
        assert res["message"]["text"]
        assert res["ruleId"] in rule_ids and rule_ids[res["ruleIndex"]] == res["ruleId"]
        assert res["level"] in LEVELS and res["kind"] == "fail"
        (loc,) = res["locations"]
        phys = loc["physicalLocation"]
        assert phys["region"]["startLine"] >= 1
        uri = phys["artifactLocation"]["uri"]
        assert uri and all(c not in uri for c in ' "<>\\\n,')  # URI-encoded
        base = phys["artifactLocation"].get("uriBaseId")
        assert base is None or base in run["originalUriBaseIds"]
        assert all(isinstance(v, str) for v in res["partialFingerprints"].values())
    (inv,) = run["invocations"]
    assert inv["executionSuccessful"] is True


def test_sarif_structure_and_results():
    rows = sample_results()
    doc = render(rows)
    check_sarif_structure(doc)
    results = doc["runs"][0]["results"]
    colorized = [r for r in results if r["ruleId"] == "IMG001"]
    unreadable = [r for r in results if r["ruleId"] == "IMG002"]
    assert len(colorized) == sum(r.flagged for r in rows) == 6
    assert len(unreadable) == 2 and {r["level"] for r in unreadable} == {"warning"}
    first = colorized[0]
    assert first["level"] == "error"
    assert first["message"]["text"] == "Image looks AI-colorized: score 0.910 >= threshold 0.500."
    loc = first["locations"][0]["physicalLocation"]["artifactLocation"]
    assert loc == {"uri": "imgs/colorized.jpg", "uriBaseId": "%SRCROOT%"}
    assert "cannot identify image file" in unreadable[0]["message"]["text"]
    summary = doc["runs"][0]["invocations"][0]["properties"]["summary"]
    assert summary["total"] == len(rows) and summary["flagged"] == 6


def test_sarif_hostile_names_are_uri_encoded():
    doc = render([flagged('<script> a,b "q".jpg'), flagged("sub/multi\nline.jpg")])
    check_sarif_structure(doc)
    uris = [
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in doc["runs"][0]["results"]
    ]
    assert uris == ["%3Cscript%3E%20a%2Cb%20%22q%22.jpg", "sub/multi%0Aline.jpg"]


def test_sarif_empty_run_is_valid():
    doc = render([ScanResult("ok.png", Status.GRAYSCALE)])
    check_sarif_structure(doc)
    assert doc["runs"][0]["results"] == []


@pytest.mark.skipif(os.name == "nt", reason="POSIX byte file names")
def test_artifact_location_relative_absolute_and_raw_bytes(tmp_path):
    root = str(tmp_path)

    def artifact_location(path, root):  # relative paths are relative to the working folder
        return _artifact_location(path, root, cwd=root)

    assert artifact_location("./a/../b/c d.png", root) == {
        "uri": "b/c%20d.png",
        "uriBaseId": "%SRCROOT%",
    }
    assert artifact_location(os.path.join(root, "x.png"), root)["uri"] == "x.png"
    outside = artifact_location("/elsewhere/y.png", root)
    assert outside == {"uri": "file:///elsewhere/y.png"}
    assert artifact_location("../up.png", root)["uri"].startswith("file:///")
    assert artifact_location("..x.png", root)["uri"] == "..x.png"  # not a parent folder
    # Non-UTF-8 names keep their real bytes, percent-encoded.
    loc = artifact_location(os.fsdecode(b"bad\xff.jpg"), root)
    assert unquote_to_bytes(loc["uri"]) == b"bad\xff.jpg"
    assert artifact_location("a:b.jpg", root)["uri"] == "a%3Ab.jpg"  # no fake URI scheme
