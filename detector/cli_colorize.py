"""`imgcheck colorize INPUT... -o OUTDIR`: colorize grayscale photos into a mirrored tree.

Only cheap modules are imported here (typer, pathlib, enums): numpy, Pillow and onnxruntime are
imported inside the command, so `imgcheck --help` stays fast. The work is done by
`imgcheck.colorizing` (model, batching) and `imgcheck.outputs` (safe paths,
atomic writes). Exit codes as in scan: 0 all done, 1 some inputs failed, 2 usage/model error.

The body is three steps: `_setup` (model, discovery, the never-over-an-input plan: nothing is
written before it passed), `_loop` (the bounded pipeline of `colorizing.run_jobs` under a
progress bar, tallied in a `_Tally`) and `_finish` (failures, the summary line, the exit code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from imgcheck.cli_common import (
    command_errors,
    exclude_option,
    exit_code_of,
    fail,
    include_option,
    max_pixels_option,
    pixel_limit,
    recursive_option,
)
from imgcheck.options import DEFAULT_BATCH_SIZE, MAX_WORKERS
from imgcheck.outputs import Format
from imgcheck.session import Device


def colorize_command(
    inputs: list[str] = typer.Argument(
        ...,
        help="Images, folders (walked recursively), glob patterns, or - to read paths from stdin.",
        show_default=False,
    ),
    outdir: Path = typer.Option(
        ...,
        "-o",
        "--outdir",
        help="Output folder; the input folders' trees are mirrored inside it.",
        show_default=False,
    ),
    fmt: Format = typer.Option(
        Format.SAME, "--format", "-f", help="Output format; 'same' keeps the input's format."
    ),
    quality: int = typer.Option(
        92, "--quality", min=1, max=100, help="JPEG/WebP quality (PNG is lossless)."
    ),
    compare: bool = typer.Option(
        False,
        "--compare",
        help="Also write NAME.compare.EXT: original | grayscale | colorized, side by side.",
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace existing outputs (default: skip them, so reruns resume).",
    ),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Model folder with manifest.json, or a colorizer .onnx file. Default: the shipped model.",
        show_default=False,
    ),
    device: Device = typer.Option(Device.AUTO, "--device", help="Where the model runs."),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        max=MAX_WORKERS,
        help="Threads that decode and encode images (0: one per core, at most 4).",
    ),
    batch_size: int = typer.Option(
        DEFAULT_BATCH_SIZE,
        "--batch-size",
        min=1,
        help="Same-size images per model run (big images run alone).",
    ),
    lanes: int = typer.Option(
        0,
        "--lanes",
        min=0,
        max=64,
        help="Model runs side by side on CPU, each on a share of the cores (0: one per core, "
        "at most 4; 1: one run at a time on all cores, the least memory).",
    ),
    recursive: bool = recursive_option(),
    include: list[str] = include_option(),
    exclude: list[str] = exclude_option(),
    max_pixels: int = max_pixels_option(),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bar and no summary; failures are still listed."
    ),
    exit_zero: bool = typer.Option(
        False, "--exit-zero", help="Exit 0 even when some inputs could not be colorized."
    ),
) -> None:
    """Colorize grayscale photos (colour photos are greyed first) at their full size.

    Outputs mirror the input folders under OUTDIR; existing outputs are skipped, so a rerun
    resumes. Exit status: 0 all done, 1 some inputs could not be colorized, 2 usage or model
    error (including an output that would overwrite an input).
    """
    with command_errors("colorize", interrupted="interrupted; rerun to resume"):
        limit = pixel_limit(max_pixels)
        run = _setup(
            inputs,
            outdir,
            fmt,
            compare,
            overwrite,
            model,
            device,
            recursive,
            include,
            exclude,
            lanes,
        )
        if run is None:  # nothing to do
            if not quiet:
                typer.echo("imgcheck colorize: no images found", err=True)
            raise typer.Exit(0)
        tally = _loop(
            run,
            workers=workers,
            quality=quality,
            batch_size=batch_size,
            max_pixels=limit,
            quiet=quiet,
        )
        raise typer.Exit(_finish(run, tally, outdir, quiet=quiet, exit_zero=exit_zero))


def _escape(text: str) -> str:
    """Rich markup escaped and control characters shown as escapes: file names are hostile
    (an ESC sequence in a name must not reach the terminal)."""
    from rich.markup import escape

    from imgcheck.terminal import printable

    return escape(printable(text))


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class _Run:
    """What `_setup` prepared: the open model, the planned jobs, how inputs were found."""

    colorizer: Any
    jobs: list[Any]
    discovery: Any
    start: float


@dataclass
class _Tally:
    """What `_loop` counted."""

    counts: dict[Any, int]
    failures: list[tuple[str, str]] = field(default_factory=list)
    megapixels: float = 0.0
    greyed: int = 0
    interrupted: KeyboardInterrupt | None = None


def _setup(
    inputs: list[str],
    outdir: Path,
    fmt: Format,
    compare: bool,
    overwrite: bool,
    model: Path | None,
    device: Device,
    recursive: bool,
    include: list[str],
    exclude: list[str],
    lanes: int = 0,
) -> _Run | None:
    """Open the model and plan every output (None: no input found). Exits 2 when the plan
    would overwrite an input: all inputs are listed before anything is written."""
    import time

    from imgcheck.colorizing import Colorizer, Job
    from imgcheck.outputs import (
        Discovery,
        InputCollision,
        OutputError,
        OutputPlanner,
        remove_stale_temps,
    )

    start = time.perf_counter()
    if outdir.exists() and not outdir.is_dir():
        raise fail("colorize", f"--outdir {outdir} exists and is not a folder")
    colorizer = Colorizer(model, device, lanes=lanes)  # a ModelError: command_errors' exit 2
    # Every input is listed before anything is written: the never-over-an-input check needs
    # all of them, and the progress bar needs the total.
    discovery = Discovery(list(inputs), outdir, recursive, tuple(include), tuple(exclude))
    found = list(discovery)
    planner = OutputPlanner(
        outdir, [Path(i.path) for i, _ in found if i.error is None], fmt, compare, overwrite
    )
    jobs: list[Job] = []
    collisions: list[str] = []
    for item, rel in found:
        if item.error is not None:
            jobs.append(Job(item.path, item.display, error=item.error))
            continue
        try:
            jobs.append(Job(item.path, item.display, planner.plan(rel, item.display)))
        except InputCollision as exc:
            collisions.append(str(exc))
        except OutputError as exc:
            jobs.append(Job(item.path, item.display, error=str(exc)))
    if collisions:
        refused = fail(
            "colorize",
            f"refusing to run: {len(collisions)} output(s) would overwrite input files. "
            "Choose an --outdir outside the input folders, or another --format.",
        )
        console = _console()
        for line in collisions[:5]:
            console.print(f"  {_escape(line)}")
        if len(collisions) > 5:
            console.print(f"  ... and {len(collisions) - 5} more")
        raise refused
    if not jobs:
        return None
    remove_stale_temps({p.parent for j in jobs if j.target for p in j.target.paths()})
    return _Run(colorizer, jobs, discovery, start)


def _loop(
    run: _Run, *, workers: int, quality: int, batch_size: int, max_pixels: int, quiet: bool
) -> _Tally:
    """Colorize every job under a progress bar. Ctrl-C (and SIGTERM/SIGHUP, command_errors'
    signals_as_interrupt) stops like this: running writes finish, queued ones are dropped, no
    temporary file is left, and the tally says what was done."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from imgcheck.colorizing import Outcome, default_workers, run_jobs

    console = _console()
    tally = _Tally(counts=dict.fromkeys(Outcome, 0))
    results = run_jobs(
        run.jobs,
        run.colorizer,
        workers=workers or default_workers(),
        quality=quality,
        batch_size=batch_size,
        max_pixels=max_pixels,
    )
    progress = Progress(
        TextColumn("colorizing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_interactive,
    )
    try:
        with progress:
            task = progress.add_task("colorize", total=len(run.jobs))
            for result in results:
                tally.counts[result.outcome] += 1
                if result.outcome is Outcome.ERROR:
                    tally.failures.append((result.path, result.error or "failed"))
                elif result.outcome is Outcome.WRITTEN:
                    tally.megapixels += result.megapixels
                    tally.greyed += result.grayscale is False
                progress.advance(task)
    except KeyboardInterrupt as exc:
        tally.interrupted = exc
    finally:
        results.close()
    return tally


def _finish(run: _Run, tally: _Tally, outdir: Path, *, quiet: bool, exit_zero: bool) -> int:
    """Failures, the one summary line, and the exit code."""
    import time

    from imgcheck.colorizing import Outcome

    console = _console()
    seconds = time.perf_counter() - run.start
    if tally.failures:
        console.print(f"[bold red]{len(tally.failures)} input(s) could not be colorized:[/]")
        for path, message in tally.failures:
            console.print(f"  {_escape(path)}: {_escape(message)}")
    if tally.interrupted is not None:
        console.print(
            "imgcheck colorize: interrupted: finished outputs are complete; rerun to resume."
        )
    if not quiet:
        parts = [
            f"{tally.counts[Outcome.WRITTEN]} written",
            f"{tally.counts[Outcome.SKIPPED]} skipped (already done)",
            f"{tally.counts[Outcome.ERROR]} errors",
        ]
        if tally.greyed:
            parts.append(f"{tally.greyed} colour inputs greyed first")
        if run.discovery.left_out:
            parts.append(f"{run.discovery.left_out} files inside --outdir left out")
        # A rate only for work done: a rerun that skipped everything wrote no megapixels.
        rate = f"{tally.megapixels / seconds:.1f} MP/s, " if tally.megapixels and seconds else ""
        console.print(
            _escape(
                f"imgcheck: {len(run.jobs)} images in {seconds:.1f} s ({rate}"
                f"{run.colorizer.provider}): {', '.join(parts)} -> {outdir}"
            )
        )
    if tally.interrupted is not None:
        return exit_code_of(tally.interrupted)
    return 1 if tally.failures and not exit_zero else 0
