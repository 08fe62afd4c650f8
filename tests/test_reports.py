"""Report formats csv/json/jsonl/table, the text hygiene helpers and the atomic writer."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_reports import HOSTILE, NON_UTF8, sample_results, summary_of

from imgcheck.reports import FORMATS, Reporter, atomic_output, open_reporter
from imgcheck.reports.cells import csv_text, printable, safe_text
from imgcheck.results import CSV_COLUMNS


def render(fmt: str, rows=None, **kwargs) -> str:
    rows = sample_results() if rows is None else rows
    stream = io.StringIO(newline="")
    reporter = open_reporter(fmt, stream, threshold=0.5, model="test-model", **kwargs)
    for r in rows:
        reporter.add(r)
    reporter.finish(summary_of(rows))
    out = stream.getvalue()
    out.encode("utf-8")  # valid UTF-8: raises on any lone surrogate
    return out


# --- text hygiene -------------------------------------------------------------------------


def test_safe_text_escapes_undecodable_bytes_only():
    assert safe_text(NON_UTF8) == "photos/bad\\xff\\xfe.jpg"
    assert safe_text("ünïcødé 猫") == "ünïcødé 猫"
    assert safe_text("x\ud800y") == "x\\ud800y"


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-x", "@a", "\tt", "\rr"])
def test_csv_text_neutralises_formula_starts(cell):
    assert csv_text(cell) == "'" + cell


def test_csv_text_leaves_plain_text():
    assert csv_text("a=b.jpg") == "a=b.jpg"


def test_printable_escapes_control_characters():
    assert printable("a\nb\x1b[31m") == "a\\nb\\x1b[31m"


# --- csv ----------------------------------------------------------------------------------


def test_csv_round_trips_with_exact_header_and_neutralised_cells():
    rows = sample_results()
    text = render("csv", rows)
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(parsed[0]) == CSV_COLUMNS
    assert text.startswith("path,status,score,verdict,width,height,format,error,stage\r\n")
    body = parsed[1:]
    assert len(body) == len(rows)
    paths = [r[0] for r in body]
    for name in HOSTILE:
        # A path a spreadsheet would evaluate is written as ./NAME: the same file, and text.
        expect = "./" + name if name[0] in "=+-@\t" else name
        assert expect in paths
    assert "photos/bad\\xff\\xfe.jpg" in paths
    err = next(r for r in body if r[0] == "./=err.jpg")
    assert err[1] == "error" and err[2] == "" and err[7].startswith("'=HYPERLINK")
    flagged = body[0]
    assert flagged[:4] == ["imgs/colorized.jpg", "ok", "0.910000", "colorized"]
    assert flagged[4:7] == ["1920", "1280", "JPEG"]
    nan_row = next(r for r in body if r[0] == "nan.jpg")
    assert nan_row[2] == ""  # NaN score -> empty, never the text "nan"


def test_csv_header_even_without_rows():
    assert render("csv", []) == ",".join(CSV_COLUMNS) + "\r\n"


def test_csv_streams_rows_as_they_come():
    stream = io.StringIO()
    reporter = open_reporter("csv", stream, threshold=0.5)
    reporter.add(sample_results()[0])
    assert stream.getvalue().count("\r\n") == 2  # header + the row, before finish


# --- json / jsonl -------------------------------------------------------------------------


def test_jsonl_one_object_per_row_with_csv_keys():
    rows = sample_results()
    lines = render("jsonl", rows).splitlines()
    assert len(lines) == len(rows)
    objs = [json.loads(line) for line in lines]
    assert all(tuple(o) == ("schema_version", *CSV_COLUMNS) for o in objs)
    assert {o["schema_version"] for o in objs} == {1}
    assert objs[0]["score"] == pytest.approx(0.91) and objs[0]["verdict"] == "colorized"
    assert objs[2]["score"] is None and objs[3]["error"] == "cannot identify image file"
    assert objs[4]["path"] == "photos/bad\\xff\\xfe.jpg"
    assert objs[5]["score"] is None  # NaN
    assert {o["path"] for o in objs} >= set(HOSTILE)  # JSON needs no formula guard


def test_json_document_with_results_and_summary():
    rows = sample_results()
    doc = json.loads(render("json", rows))
    assert list(doc) == ["schema_version", "version", "threshold", "model", "results", "summary"]
    assert doc["schema_version"] == 1
    assert doc["threshold"] == 0.5 and doc["model"] == "test-model"
    assert len(doc["results"]) == len(rows)
    assert all(tuple(r) == CSV_COLUMNS for r in doc["results"])
    s = doc["summary"]
    assert s["total"] == len(rows) and s["by_status"]["error"] == 2
    assert s["flagged"] == s["by_verdict"]["colorized"] == 6


def test_summary_keys_present_even_when_zero():
    s = json.loads(render("json", []))["summary"]
    assert s["by_status"] == {"ok": 0, "grayscale": 0, "too_small": 0, "error": 0}
    assert s["by_verdict"] == {"colorized": 0, "real": 0, "n/a": 0}
    assert s["flagged"] == s["accepted"] == s["errors"] == s["total"] == 0


def test_json_model_by_name_and_sha256_not_path():
    stream = io.StringIO()
    info = {"name": "imgcheck/detector.onnx", "sha256": "ab" * 32, "variant": "fp32"}
    reporter = open_reporter(
        "json", stream, threshold=0.5, model="/abs/site-packages/x.onnx", model_info=info
    )
    reporter.finish(summary_of([]))
    doc = json.loads(stream.getvalue())
    assert doc["model"] == info and "site-packages" not in stream.getvalue()


def test_json_empty_and_streaming():
    assert json.loads(render("json", []))["results"] == []
    stream = io.StringIO()
    reporter = open_reporter("json", stream, threshold=None)
    reporter.add(sample_results()[1])
    assert '"imgs/real.png"' in stream.getvalue()  # written before finish, not held


# --- table --------------------------------------------------------------------------------


def test_table_shows_rows_and_escapes(monkeypatch):
    text = render("table", console_width=160)
    assert "imgs/colorized.jpg" in text and "colorized" in text
    assert "multi\\nline.jpg" in text  # the newline cannot break the table
    assert "photos/bad\\xff\\xfe.jpg" in text
    assert "<script>alert(1)</script>&.jpg" in text  # markup-free: shown literally
    assert "threshold 0.500" in text
    assert "17 images" not in text  # the counts are scan's summary line, printed once


def test_table_piped_keeps_each_row_on_one_line():
    """Not a terminal (`| cat`): no 80-column wrap, a long file name stays whole."""
    from imgcheck.results import ScanResult, Status

    long = "a folder with a long name/" * 6 + "and a photo with a long name.jpg"
    rows = [ScanResult("short.jpg", Status.OK, score=0.1), ScanResult(long, Status.OK, score=0.9)]
    stream = io.StringIO()
    reporter = open_reporter("table", stream, threshold=0.5)
    for r in rows:
        reporter.add(r)
    reporter.finish(summary_of(rows))
    lines = stream.getvalue().splitlines()
    assert any(long in line for line in lines)
    assert len(lines) == 3 + len(rows)  # model line, header, rule, then one line per row


def test_table_streams_in_chunks(monkeypatch):
    from imgcheck.reports import table

    monkeypatch.setattr(table, "CHUNK_ROWS", 2)
    stream = io.StringIO()
    reporter = open_reporter("table", stream, threshold=0.5, console_width=120)
    rows = sample_results()
    for r in rows[:3]:
        reporter.add(r)
    assert "imgs/real.png" in stream.getvalue()  # first chunk printed before finish
    assert len(reporter._rows) == 1  # only the unprinted tail is held
    reporter.finish(summary_of(rows[:3]))
    assert stream.getvalue().count("path") == 1  # one header for all chunks


# --- API ----------------------------------------------------------------------------------


def test_every_format_is_a_reporter_and_unknown_is_rejected():
    for fmt in FORMATS:
        reporter = open_reporter(fmt, io.StringIO(), threshold=0.5)
        assert isinstance(reporter, Reporter)
        assert reporter.needs_thumbnails is (fmt == "html")
    with pytest.raises(ValueError, match="unknown report format"):
        open_reporter("xml", io.StringIO(), threshold=0.5)


def test_reports_do_not_import_onnxruntime_or_torch():
    code = (
        "import io, sys\n"
        "from imgcheck.reports import FORMATS, open_reporter\n"
        "for f in FORMATS: open_reporter(f, io.StringIO(), threshold=0.5)\n"
        "bad = [m for m in ('onnxruntime', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --- atomic output ------------------------------------------------------------------------


def test_atomic_output_replaces_only_on_success(tmp_path: Path):
    target = tmp_path / "report.csv"
    target.write_text("old complete report\n")
    with pytest.raises(RuntimeError), atomic_output(target) as stream:
        stream.write("half a rep")
        raise RuntimeError("scan crashed")
    assert target.read_text() == "old complete report\n"  # never a partial file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]  # temp removed
    with atomic_output(target) as stream:
        stream.write("a,b\r\n")
        assert not target.read_text().startswith("a,b")  # invisible until the block ends
    assert target.read_bytes() == b"a,b\r\n"  # newline="" keeps CRLF as written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]


def test_atomic_output_leaves_no_file_on_error_or_interrupt(tmp_path: Path):
    target = tmp_path / "new.json"
    for exc in (ValueError, KeyboardInterrupt):
        with pytest.raises(exc), atomic_output(target) as stream:
            stream.write("{")
            raise exc()
        assert list(tmp_path.iterdir()) == []


def test_atomic_output_none_is_stdout_as_utf8_without_newline_translation(capsys):
    print("before")
    with atomic_output(None) as stream:
        stream.write("h\u00e9llo,\u732b\r\n")
    print("after")
    assert capsys.readouterr().out == "before\nh\u00e9llo,\u732b\r\nafter\n"
    assert not sys.stdout.closed


def test_atomic_output_stdout_bytes_match_file(tmp_path: Path):
    code = (
        "import io, sys\n"
        "from pathlib import Path\n"
        "from imgcheck.reports import atomic_output, open_reporter\n"
        "from imgcheck.results import ScanResult, Status, Summary\n"
        "for target in (None, Path(sys.argv[1])):\n"
        "    with atomic_output(target) as s:\n"
        "        r = open_reporter('csv', s, threshold=0.5)\n"
        "        r.add(ScanResult('caf\u00e9 \u732b.jpg', Status.GRAYSCALE))\n"
        "        r.finish(Summary())\n"
    )
    out = tmp_path / "r.csv"
    env = {**os.environ, "PYTHONIOENCODING": "latin-1"}  # a non-UTF-8 stdout
    proc = subprocess.run(
        [sys.executable, "-c", code, str(out)], capture_output=True, env=env, timeout=60, check=True
    )
    assert proc.stdout == out.read_bytes()
    assert out.read_bytes().endswith("caf\u00e9 \u732b.jpg,grayscale,,n/a,,,,,\r\n".encode())
