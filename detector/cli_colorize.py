"""`imgcheck colorize INPUT... -o OUTDIR`: colorize grayscale photos into a mirrored tree.

Only cheap modules are imported here (typer, pathlib, enums): numpy, Pillow and onnxruntime are
imported inside the command, so `imgcheck --help` stays fast. The work is done by
`imgcheck.colorizing` (model, batching) and `imgcheck.outputs` (safe paths,
atomic writes). Exit codes as in scan: 0 all done, 1 some inputs failed, 2 usage/model error.
"""

from __future__ import annotations

from pathlib import Path

import typer

from imgcheck.cli_common import command_errors, exit_code_of, pixel_limit
from imgcheck.options import MAX_WORKERS
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
        help="Threads that decode and encode images (0: up to 4).",
    ),
    batch_size: int = typer.Option(
        8, "--batch-size", min=1, help="Same-size images per model run (big images run alone)."
    ),
    recursive: bool = typer.Option(
        True, "--recursive/--no-recursive", help="Walk into sub-folders of folder inputs."
    ),
    include: list[str] = typer.Option(
        [], "--include", help="Only files matching this glob (name, or relative path with /)."
    ),
    exclude: list[str] = typer.Option(
        [], "--exclude", help="Skip files and folders matching this glob."
    ),
    max_pixels: int = typer.Option(
        0,
        "--max-pixels",
        min=0,
        help="Refuse images larger than this (decompression bombs). 0: Pillow's limit, ~179 MP.",
        show_default=False,
    ),
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
        code = _run(
            inputs=inputs,
            outdir=outdir,
            fmt=fmt,
            quality=quality,
            compare=compare,
            overwrite=overwrite,
            model=model,
            device=device,
            workers=workers,
            batch_size=batch_size,
            recursive=recursive,
            include=tuple(include),
            exclude=tuple(exclude),
            max_pixels=max_pixels,
            quiet=quiet,
            exit_zero=exit_zero,
        )
    raise typer.Exit(code)


def _run(
    *,
    inputs: list[str],
    outdir: Path,
    fmt: Format,
    quality: int,
    compare: bool,
    overwrite: bool,
    model: Path | None,
    device: Device,
    workers: int,
    batch_size: int,
    recursive: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    max_pixels: int,
    quiet: bool,
    exit_zero: bool,
) -> int:
    """The command's body; returns the exit code. Heavy imports live here on purpose."""
    import time

    from rich.console import Console
    from rich.markup import escape as markup_escape

    from imgcheck.terminal import printable

    def escape(text: str) -> str:
        """Rich markup escaped and control characters shown as escapes: file names are
        hostile (an ESC sequence in a name must not reach the terminal)."""
        return markup_escape(printable(text))

    from imgcheck.colorizing import Colorizer, Job, Outcome, default_workers, run_jobs
    from imgcheck.outputs import (
        Discovery,
        InputCollision,
        OutputError,
        OutputPlanner,
        remove_stale_temps,
    )
    from imgcheck.session import ModelError

    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def error(message: str) -> int:
        console.print(f"imgcheck colorize: [bold red]error[/]: {escape(message)}")
        return 2

    limit = pixel_limit(max_pixels)

    start = time.perf_counter()
    if outdir.exists() and not outdir.is_dir():
        return error(f"--outdir {outdir} exists and is not a folder")
    try:
        colorizer = Colorizer(model, device)
    except ModelError as exc:
        return error(str(exc))

    # Every input is listed before anything is written: the never-over-an-input check needs
    # all of them, and the progress bar needs the total.
    discovery = Discovery(list(inputs), outdir, recursive, include, exclude)
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
        error(
            f"refusing to run: {len(collisions)} output(s) would overwrite input files. "
            "Choose an --outdir outside the input folders, or another --format."
        )
        for line in collisions[:5]:
            console.print(f"  {escape(line)}")
        if len(collisions) > 5:
            console.print(f"  ... and {len(collisions) - 5} more")
        return 2
    if not jobs:
        if not quiet:
            console.print("No images found.")
        return 0
    remove_stale_temps({p.parent for j in jobs if j.target for p in j.target.paths()})

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    counts = dict.fromkeys(Outcome, 0)
    failures: list[tuple[str, str]] = []
    megapixels = 0.0
    greyed = 0
    interrupted: KeyboardInterrupt | None = None
    results = run_jobs(
        jobs,
        colorizer,
        workers=workers or default_workers(),
        quality=quality,
        batch_size=batch_size,
        max_pixels=limit,
    )
    # SIGTERM/SIGHUP (a job scheduler, a closed terminal) stop like Ctrl-C (command_errors'
    # signals_as_interrupt): running writes finish, queued ones are dropped, no temp is left.
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
            task = progress.add_task("colorize", total=len(jobs))
            for result in results:
                counts[result.outcome] += 1
                if result.outcome is Outcome.ERROR:
                    failures.append((result.path, result.error or "failed"))
                elif result.outcome is Outcome.WRITTEN:
                    megapixels += result.megapixels
                    greyed += result.grayscale is False
                progress.advance(task)
    except KeyboardInterrupt as exc:
        interrupted = exc
    except ModelError as exc:
        return error(str(exc))
    finally:
        results.close()

    seconds = time.perf_counter() - start
    if failures:
        console.print(f"[bold red]{len(failures)} input(s) could not be colorized:[/]")
        for path, message in failures:
            console.print(f"  {escape(path)}: {escape(message)}")
    if interrupted is not None:
        console.print("Interrupted: finished outputs are complete; rerun to resume.")
    if not quiet:
        rate = megapixels / seconds if seconds > 0 else 0.0
        parts = [
            f"{counts[Outcome.WRITTEN]} written",
            f"{counts[Outcome.SKIPPED]} skipped (already done)",
            f"{counts[Outcome.ERROR]} errors",
        ]
        if greyed:
            parts.append(f"{greyed} colour inputs greyed first")
        if discovery.left_out:
            parts.append(f"{discovery.left_out} files inside --outdir left out")
        console.print(
            escape(
                f"imgcheck: {len(jobs)} images in {seconds:.1f} s ({rate:.1f} MP/s, "
                f"{colorizer.provider}): {', '.join(parts)} -> {outdir}"
            )
        )
    if interrupted is not None:
        return exit_code_of(interrupted)
    return 1 if failures and not exit_zero else 0

