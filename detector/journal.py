"""Resume: a scan's rows are saved as they come, so a rerun with the same `-o` finishes the rest.

A scan of millions of images must survive its driver being killed (a spot node, a Ctrl-C, an
OOM). The journal is a folder of Parquet parts (`reports.parquet.PartsWriter`, each part written
atomically), plus `_imgcheck.json` saying what scan it belongs to:

- `--report parquet -o FOLDER`: the folder *is* the report; `_SUCCESS` appears when the scan is
  complete. Rerun on an unfinished folder: resume. Rerun on a finished one: a new scan (our own
  parts are replaced; a folder holding anything else is refused).
- any other `-o FILE` with `--engine ray`: the journal is the hidden folder
  `.FILE.imgcheck-resume` beside the report, removed once the report has been written.

On a rerun every listed input that the journal already holds is not scanned again: its saved
row is put back in its place in the listing order, so the report is the one an uninterrupted
scan writes (no row lost, none twice). The journal records the model (sha256, variant), the
threshold, view and pixel limit: a rerun with other settings would mix rows of two different
scans and is refused (exit 2) until the journal is removed or another `-o` is chosen.
"""

from __future__ import annotations

import json
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from imgcheck.inputs import InputItem
from imgcheck.results import ScanResult
from imgcheck.terminal import safe_text

META = "_imgcheck.json"
FORMAT = 1


class JournalError(ValueError):
    """The journal cannot be used (other settings, a foreign folder): one line, exit 2."""


def journal_folder(output: Path, fmt: str) -> tuple[Path, bool]:
    """(the journal folder for `-o output`, whether that folder is the report itself)."""
    from imgcheck.reports.parquet import is_single_file

    if fmt == "parquet" and not is_single_file(output):
        return output, True
    return output.parent / f".{output.name}.imgcheck-resume", False


class Journal:
    """Open with `Journal.open`; `merge(items, run)` around an engine's `run`; `finish()` once
    the report is complete."""

    def __init__(self, folder: Path, *, is_report: bool, full: bool) -> None:
        from imgcheck.reports.parquet import PartsWriter

        self.folder = folder
        self.is_report = is_report
        self.done: dict[str, deque[ScanResult]] = {}
        self.resumed = 0
        self.saved = 0
        self.writer = PartsWriter(folder, full=full)

    @classmethod
    def open(cls, output: Path, fmt: str, settings: dict[str, Any], *, full: bool) -> Journal:
        """Create the journal, or take up the one an interrupted run left."""
        from imgcheck.atomic import atomic_write, remove_stale_temps
        from imgcheck.reports.parquet import SUCCESS, part_files, read_parts

        folder, is_report = journal_folder(output, fmt)
        meta = {"imgcheck_journal": FORMAT, **settings}
        journal = cls(folder, is_report=is_report, full=full)
        if folder.is_dir():
            remove_stale_temps([folder])  # parts of a killed writer that never got renamed
            ours = folder / META
            names = {n for n in _names(folder) if not n.startswith(".")}
            if not ours.is_file():
                if names:
                    raise JournalError(
                        f"-o {output}: {folder} exists and is not an imgcheck parquet folder; "
                        "remove it or choose another -o"
                    )
            elif (folder / SUCCESS).exists():  # a finished scan: this is a new one
                for part in part_files(folder):
                    part.unlink()
                (folder / SUCCESS).unlink()
            else:
                try:
                    old = json.loads(ours.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise JournalError(f"cannot read {ours}: {exc}") from None
                if old != meta:
                    differ = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
                    raise JournalError(
                        f"{folder} holds an unfinished scan with other settings "
                        f"({', '.join(differ)}); rerun it with the same settings, or remove "
                        "it to start again"
                    )
                try:
                    for row in read_parts(folder):
                        journal.done.setdefault(row.path, deque()).append(row)
                except Exception as exc:  # a part that pyarrow cannot read: not ours to guess
                    raise JournalError(f"cannot read the parts in {folder}: {exc}") from None
        elif folder.exists():
            raise JournalError(f"-o {output}: {folder} is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / META, lambda fh: fh.write(json.dumps(meta, indent=1).encode()))
        return journal

    @property
    def pending_rows(self) -> int:
        return sum(len(rows) for rows in self.done.values())

    def merge(
        self,
        items: Iterable[InputItem],
        run: Callable[[Iterable[InputItem]], Iterable[ScanResult]],
    ) -> Iterator[ScanResult]:
        """Rows for `items` in their order: saved ones from the journal, the others from
        `run` (which gets only those and must yield in its input order), saved as they come."""
        from imgcheck.bounded import merge_known

        def known(item: InputItem) -> ScanResult | None:
            saved = self.done.get(safe_text(item.path))
            if not saved:
                return None
            row = saved.popleft()
            row.path = item.path
            return row

        def resumed(_: ScanResult) -> None:
            self.resumed += 1

        def save(result: ScanResult) -> None:
            self.writer.add(result)
            self.saved += 1

        try:
            yield from merge_known(items, known, run, on_known=resumed, on_fresh=save)
        finally:
            self.writer.flush()  # interrupted or not, what was scanned stays saved

    def finish(self) -> None:
        """The report is complete: mark the parquet folder done, or drop the side journal."""
        from imgcheck.atomic import atomic_write
        from imgcheck.reports.parquet import SUCCESS

        self.writer.close()
        if self.is_report:
            atomic_write(self.folder / SUCCESS, lambda fh: None)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


def _names(folder: Path) -> list[str]:
    import os

    try:
        return os.listdir(folder)
    except OSError:
        return []


__all__ = ["Journal", "JournalError", "journal_folder"]
