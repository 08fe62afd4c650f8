"""Self-contained HTML report: one file a person opens, no network needed.

Thumbnails, score bars with the threshold mark, click-to-sort columns, a verdict filter, and for
flagged images a heatmap of the detector's patch maps laid over the thumbnail (see
`heatmap.py`). Everything is inline: CSS, a small script, images as ``data:`` URIs. A
Content-Security-Policy allows only that inline script (by its sha256), so even a file name
that slipped past escaping could not run code; and every text is HTML-escaped anyway.

Memory stays bounded: each row is rendered on `add` (thumbnail and heatmap encoded right away,
the `ScanResult` dropped) into a temporary spool file, and `finish` writes header (which needs
the final counts), spooled rows and footer to the output. File size is bounded too:
flagged images always get their thumbnail and heatmap, other rows only for the first
`MAX_PLAIN_THUMBNAILS` of them (a thumbnail is a few KB; for very large runs use csv/jsonl).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import re
import shutil
import tempfile
from datetime import datetime, timezone
from importlib import resources
from typing import TextIO

from imgcheck import __version__
from imgcheck.reports.base import finite, fmt_score
from imgcheck.reports.cells import printable
from imgcheck.results import ScanResult, Status, Summary, Verdict

MAX_PLAIN_THUMBNAILS = 2000
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")

_FILTERS = (
    ("all", "all"),
    ("colorized", "colorized"),
    ("real", "real"),
    ("na", "n/a"),
    ("grayscale", "grayscale"),
    ("too_small", "too small"),
    ("error", "errors"),
)


def esc(text: object) -> str:
    """HTML-escape for text and quoted attributes; control characters shown as escapes."""
    return html.escape(printable(str(text)), quote=True)


def data_uri(data: bytes, mime: str | None = None) -> str:
    if mime is None:
        mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _resource(name: str) -> str:
    return resources.files("imgcheck.reports").joinpath(name).read_text("utf-8")


def _image_size(data: bytes) -> tuple[int, int] | None:
    from PIL import Image  # only the header is parsed

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # a broken thumbnail must not break the report
        return None


class HtmlReporter:
    needs_thumbnails = True

    def __init__(
        self, stream: TextIO, *, threshold: float | None, model: str | None = None
    ) -> None:
        self._stream = stream
        self._threshold = finite(threshold)
        self._model = model
        self._spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed in finish)
        self._plain_thumbs = 0
        self._rows = 0
        self._started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    # -- rows ------------------------------------------------------------------------------

    def _thumb_cell(self, r: ScanResult) -> str:
        thumb = r.thumbnail
        if thumb and not r.flagged:
            if self._plain_thumbs >= MAX_PLAIN_THUMBNAILS:
                thumb = None
            else:
                self._plain_thumbs += 1
        size = _image_size(thumb) if thumb else None
        heat = None
        if r.flagged and r.patch_maps:
            from imgcheck.reports.heatmap import heatmap_png

            heat = heatmap_png(r.patch_maps, r.boxes, r.view_size, size)
        parts = []
        if thumb and size:
            parts.append(
                f'<img src="{data_uri(thumb)}" width="{size[0]}" height="{size[1]}" alt="">'
            )
        if heat:
            cls = "heat" if parts else ""
            parts.append(
                f'<img class="{cls}" src="{data_uri(heat, "image/png")}" '
                'alt="heatmap: bright where the image looks colorized">'
            )
        return f'<td><div class="tw">{"".join(parts)}</div></td>' if parts else "<td></td>"

    def _score_cell(self, r: ScanResult) -> str:
        score = finite(r.score)
        if score is None:
            return '<td data-v=""></td>'
        mark = ""
        if self._threshold is not None:
            mark = f'<b style="left:{100 * min(max(self._threshold, 0.0), 1.0):.1f}%"></b>'
        width = 100 * min(max(score, 0.0), 1.0)
        return (
            f'<td data-v="{score:.6f}"><div class="score"><div class="bar">'
            f'<i style="width:{width:.1f}%"></i>{mark}</div>'
            f"<span>{fmt_score(score)}</span></div></td>"
        )

    def add(self, result: ScanResult) -> None:
        r = result
        verdict = r.verdict.value
        status = r.status.value
        badge = "error" if r.status is Status.ERROR else verdict.replace("/", "")
        pixels = r.width * r.height if r.width and r.height else ""
        size = f"{r.width}×{r.height}" if r.width and r.height else ""
        row = (
            f'<tr data-verdict="{esc(verdict)}" data-status="{esc(status)}"'
            f"{' class=flagged' if r.flagged else ''}>"
            f"{self._thumb_cell(r)}"
            f'<td class="path">{esc(r.path)}</td>'
            f"<td>{esc(status)}</td>"
            f"{self._score_cell(r)}"
            f'<td><span class="badge {esc(badge)}">{esc(verdict)}</span></td>'
            f'<td class="num" data-v="{pixels}">{size}</td>'
            f"<td>{esc(r.format or '')}</td>"
            f'<td class="err">{esc(r.error or "")}</td></tr>\n'
        )
        self._spool.write(row)
        self._rows += 1

    # -- document --------------------------------------------------------------------------

    def _meta(self) -> str:
        bits = [f"imgcheck {esc(__version__)}", esc(self._started)]
        bits.append(f"threshold {fmt_score(self._threshold)}")
        if self._model:
            bits.append(f"model {esc(self._model)}")
        return " · ".join(bits)

    def _counts(self, summary: Summary) -> tuple[str, str]:
        count = {
            "all": summary.total,
            "colorized": summary.by_verdict.get(Verdict.COLORIZED.value, 0),
            "real": summary.by_verdict.get(Verdict.REAL.value, 0),
            "na": summary.by_verdict.get(Verdict.NOT_APPLICABLE.value, 0),
            "grayscale": summary.by_status.get(Status.GRAYSCALE.value, 0),
            "too_small": summary.by_status.get(Status.TOO_SMALL.value, 0),
            "error": summary.by_status.get(Status.ERROR.value, 0),
        }
        options = "".join(
            f'<option value="{key}">{label} ({count[key]})</option>' for key, label in _FILTERS
        )
        counts = (
            f"<b>{count['all']}</b> images · <b>{count['colorized']}</b> colorized · "
            f"<b>{count['real']}</b> real · <b>{count['grayscale']}</b> grayscale · "
            + (f"<b>{count['too_small']}</b> too small · " if count["too_small"] else "")
            + f"<b>{count['error']}</b> errors"
        )
        return options, counts

    def finish(self, summary: Summary) -> None:
        script = _resource("html_report.js")
        digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
        options, counts = self._counts(summary)
        footer = (
            f"{summary.total} images in {summary.seconds:.1f} s "
            f"({summary.images_per_second:.1f} images/s) on {esc(summary.provider)}. "
            "Score: calibrated probability that the image was colorized from a grayscale photo; "
            f"flagged at or above {fmt_score(self._threshold)}."
        )
        values = {
            "SCRIPT_HASH": f"sha256-{digest}",
            "VERSION": esc(__version__),
            "META": self._meta(),
            "FILTER_OPTIONS": options,
            "COUNTS": counts,
            "FOOTER": footer,
            "SCRIPT": script,
        }
        # One pass: text that was substituted in is never scanned for placeholders again.
        template = _resource("html_template.html")
        head, tail = (
            _PLACEHOLDER.sub(lambda m: values[m.group(1)], part)
            for part in template.split("@ROWS@")
        )
        self._stream.write(head)
        if self._rows == 0:
            self._stream.write('<tr><td class="empty" colspan="8">No images scanned.</td></tr>\n')
        self._spool.seek(0)
        shutil.copyfileobj(self._spool, self._stream)
        self._spool.close()
        self._stream.write(tail)
        self._stream.flush()
