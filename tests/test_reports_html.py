"""HTML report (self-contained, escaped, heatmaps for flagged rows) and the image helpers."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from html.parser import HTMLParser

import numpy as np
from fixtures_reports import flagged, sample_results, summary_of
from PIL import Image

from imgcheck.reports import make_thumbnail, open_reporter
from imgcheck.reports.heatmap import heat_values, heatmap_png
from imgcheck.results import ScanResult, Status, Verdict


def render(rows) -> str:
    stream = io.StringIO()
    reporter = open_reporter("html", stream, threshold=0.5, model="m<1>")
    assert reporter.needs_thumbnails
    for r in rows:
        reporter.add(r)
    reporter.finish(summary_of(rows))
    text = stream.getvalue()
    text.encode("utf-8")
    return text


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def parse(text: str) -> _Collector:
    p = _Collector()
    p.feed(text)
    return p


def test_html_is_self_contained_and_escaped():
    rows = sample_results()
    text = render(rows)
    doc = parse(text)
    # Nothing loaded from anywhere: every src is a data: URI, no external refs at all.
    srcs = [a["src"] for t, a in doc.tags if "src" in a]
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", text)
    assert [t for t, _ in doc.tags].count("script") == 1
    # Hostile names appear only escaped; the parser gives back the text the user sees.
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;.jpg" in text
    shown = "".join(doc.text)
    assert "<script>alert(1)</script>&.jpg" in shown
    assert 'say "hi".png' in shown and "multi\\nline.jpg" in shown
    assert "photos/bad\\xff\\xfe.jpg" in shown
    assert "model m<1>" in shown
    # One table row per result, each carrying verdict and status for the filter.
    trs = [a for t, a in doc.tags if t == "tr" and "data-verdict" in a]
    assert len(trs) == len(rows)
    assert sum(a.get("class") == "flagged" for a in trs) == 6


def test_html_csp_allows_exactly_the_inline_script():
    text = render(sample_results()[:2])
    doc = parse(text)
    script = "".join(doc.scripts)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = next(
        a["content"] for t, a in doc.tags if a.get("http-equiv") == "Content-Security-Policy"
    )
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert "addEventListener" in script  # sorting/filter code is inline


def test_html_heatmap_on_flagged_rows_only():
    rows = [flagged(), ScanResult("real.png", Status.OK, 0.1, Verdict.REAL, 9, 9, "PNG")]
    rows[1].thumbnail = rows[0].thumbnail
    rows[1].patch_maps, rows[1].boxes, rows[1].view_size = (
        rows[0].patch_maps,
        rows[0].boxes,
        (96, 64),
    )
    doc = parse(render(rows))
    heat = [a for t, a in doc.tags if t == "img" and a.get("class") == "heat"]
    assert len(heat) == 1 and heat[0]["src"].startswith("data:image/png;base64,")
    png = Image.open(io.BytesIO(base64.b64decode(heat[0]["src"].split(",", 1)[1])))
    assert png.mode == "RGBA" and png.size == (48, 32)  # laid exactly over the thumbnail
    thumbs = [
        a for t, a in doc.tags if t == "img" and a.get("src", "").startswith("data:image/jpeg")
    ]
    assert len(thumbs) == 2


def test_html_footer_filter_counts_and_empty_report():
    rows = sample_results()
    text = render(rows)
    assert f"{len(rows)} images in 1.5 s" in text
    assert '<option value="colorized">colorized (6)</option>' in text
    assert '<option value="error">errors (2)</option>' in text
    assert "No images scanned." in render([])


def test_html_caps_plain_thumbnails(monkeypatch):
    from imgcheck.reports import html_report

    monkeypatch.setattr(html_report, "MAX_PLAIN_THUMBNAILS", 1)
    real = [ScanResult(f"r{i}.png", Status.OK, 0.1, Verdict.REAL, 9, 9, "PNG") for i in range(3)]
    for r in real:
        r.thumbnail = flagged().thumbnail
    doc = parse(render([*real, flagged()]))
    jpegs = [
        a for t, a in doc.tags if t == "img" and a.get("src", "").startswith("data:image/jpeg")
    ]
    assert len(jpegs) == 2  # one plain row + the flagged one (always shown)


# --- heatmap / thumbnail ------------------------------------------------------------------


def test_heat_values_follow_crop_boxes_and_average_overlaps():
    maps = [np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32)]
    values, covered = heat_values(maps, [(0, 0, 4, 4), (2, 0, 6, 4)], (8, 6))
    assert covered[:4, :6].all() and not covered[4:].any() and not covered[:, 6:].any()
    assert values[1, 0] == 0.0 and values[1, 5] == 1.0
    assert values[1, 3] == 0.5  # overlap of a 0-crop and a 1-crop


def test_heatmap_png_is_transparent_where_no_crop_looked():
    png = heatmap_png([np.full((3, 3), 0.9, np.float32)], [(0, 0, 10, 10)], (20, 10))
    img = Image.open(io.BytesIO(png))
    assert img.size == (20, 10) and img.mode == "RGBA"
    alpha = np.asarray(img)[..., 3]
    assert alpha[:, :9].min() > 100 and alpha[:, 11:].max() == 0
    assert heatmap_png([], [], (20, 10)) is None
    assert heatmap_png([np.full((2, 2), np.nan)], [(0, 0, 4, 4)], None) is None


def test_make_thumbnail_fits_and_handles_odd_modes():
    for img in (
        Image.new("RGB", (800, 400), (200, 10, 10)),
        Image.new("RGBA", (100, 300), (0, 0, 0, 0)),
        Image.new("I;16", (320, 320), 40000),
        Image.new("P", (50, 50)),
        Image.new("L", (10, 5), 128),
    ):
        data = make_thumbnail(img, max_side=160)
        thumb = Image.open(io.BytesIO(data))
        assert thumb.format == "JPEG" and thumb.mode == "RGB"
        assert max(thumb.size) <= 160 and len(data) < 20_000
    assert Image.open(io.BytesIO(make_thumbnail(Image.new("RGB", (800, 400))))).size == (160, 80)
    # Transparent pixels become white, not black.
    rgba = Image.open(io.BytesIO(make_thumbnail(Image.new("RGBA", (20, 20), (0, 0, 0, 0)))))
    assert np.asarray(rgba).min() > 240
