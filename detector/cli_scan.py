"""`imgcheck scan`: find AI-colorized images in files and folders; a CI gate like ruff.

Only cheap imports at module level (typer, pathlib, enum, and the import-light session and
models modules for `Device` and `Variant`), so `imgcheck --help` never loads numpy, Pillow or onnxruntime; the pipeline is
imported inside the command.

Decisions worth knowing:
- Report format: `--report`, else guessed from `-o`'s extension (.csv .json .jsonl .html .sarif),
  else `table` when stdout is a terminal and `csv` when it is not (a pipe or a file gets the
  machine-readable contract).
- Exit codes: 0 nothing flagged, 1 at least one image flagged (with `--fail-on-error`, an
  unreadable image counts too), 2 usage, model or internal error (one clear line, no
  traceback; set IMGCHECK_DEBUG=1 for the traceback). `--exit-zero` reports only. A closed
  output pipe (`| head`) ends the scan quietly, exiting by the same table for the images
  scanned until then (so `set -o pipefail` fails only on a flagged image, never on the pipe).
- The summary line always goes to stderr, even with `--quiet` (which hides the progress bar and
  warnings), so a CI log shows what was scanned. So does "no images found": a misspelled folder
  must not pass a gate silently (`--fail-on-empty` makes it exit 1).
- Settings: defaults < `[tool.imgcheck]` / `imgcheck.toml` < `IMGCHECK_*` < flags typed on the
  command line (`imgcheck.config`; a flag counts as given when click says it came from
  the command line). `--show-settings` prints them and exits.
- `--baseline FILE` accepts the flagged images it lists by content hash; `--write-baseline FILE`
  records the current ones and exits 0 (`imgcheck.baseline`).
- Folder walks respect .gitignore (`--no-ignore`) and skip node_modules and virtual
  environments (`imgcheck.ignore`).
"""

from __future__ import annotations

import os
import sys
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from imgcheck.cli_common import (
    command_errors,
    exclude_option,
    fail,
    include_option,
    max_pixels_option,
    pixel_limit,
    recursive_option,
    silence_stdout,
    warn,
)
from imgcheck.models import Variant
from imgcheck.options import DEFAULT_BATCH_SIZE, MAX_WORKERS, ScanOptions
from imgcheck.session import Device

if TYPE_CHECKING:  # only for annotations: results is imported inside the command
    from imgcheck.results import Summary

_SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_SUFFIX_FORMATS |= {".html": "html", ".htm": "html", ".sarif": "sarif", ".parquet": "parquet"}


class ReportFormat(str, Enum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"
    HTML = "html"
    SARIF = "sarif"
    GITHUB = "github"
    PARQUET = "parquet"


class Engine(str, Enum):
    LOCAL = "local"
    RAY = "ray"


def _choose_format(report: str | None, output: Path | None) -> str:
    if report is not None:
        return report
    if output is not None:
        return _SUFFIX_FORMATS.get(output.suffix.lower(), "csv")
    return "table" if sys.stdout.isatty() else "csv"


def _fail(message: str) -> typer.Exit:
    return fail("scan", message)


def _check_paths(paths: list[str]) -> None:
    """A path named on the command line that does not exist is a usage error (exit 2), so a
    typo in a CI job fails instead of passing on zero images. Paths read from stdin are not
    checked here: they become error rows (lists from `git diff` name deleted files)."""
    import glob

    for path in paths:
        if path == "-":
            continue
        if "://" in path:  # s3://bucket/prefix, file:///...: checked through fsspec
            from imgcheck.sources import check, is_url

            if is_url(path):
                problem = check(path)
                if problem is not None:
                    raise _fail(problem)
                continue
        try:
            os.lstat(path)
            continue
        except FileNotFoundError:
            pass
        except OSError as exc:  # e.g. under an unreadable folder: say so, not "no such file"
            raise _fail(f"{(exc.strerror or str(exc)).lower()}: {path}") from None
        if not glob.has_magic(path):
            raise _fail(f"no such file or directory: {path}")
        if next(glob.iglob(path, recursive=True), None) is None:
            raise _fail(f"no files match the pattern {path}")


def _exit_code(flagged: int, errors: int, *, fail_on_error: bool, exit_zero: bool) -> int:
    if exit_zero:
        return 0
    return 1 if flagged or (fail_on_error and errors) else 0


def scan_command(
    ctx: typer.Context,
    paths: list[str] | None = typer.Argument(
        None,
        help="Image files, folders (walked recursively), glob patterns, or - to read paths "
        "from stdin (one per line). Default: `paths` from the config file.",
        metavar="PATH...",
        show_default=False,
    ),
    report: ReportFormat | None = typer.Option(
        None,
        "--report",
        "-f",
        help="Report format. Default: from -o's extension, else table on a terminal, csv otherwise.",
        show_default=False,
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the report to FILE (atomically) instead of stdout."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Let -o replace an existing file that is not an imgcheck report (never an input).",
    ),
    recursive: bool = recursive_option(),
    include: list[str] = include_option(),
    exclude: list[str] = exclude_option(),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Another exported detector: a folder with manifest.json, or a .onnx file.",
    ),
    device: Device = typer.Option(
        Device.AUTO, "--device", help="Where to run the detector; auto prefers CUDA."
    ),
    variant: Variant = typer.Option(
        Variant.FP32,
        "--variant",
        help="Detector build: fp32 is the calibrated model; int8 quantizes the network part "
        "(export keeps it only within 0.005 AUC of fp32; the shipped forensic detector gains no "
        "speed from it); fp16 is meant for CUDA. The model folder must ship the variant (see "
        "its manifest.json).",
    ),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        min=0.0,
        max=1.0,
        help="Flag images scoring at least this. Default: the model's calibrated threshold.",
        show_default=False,
    ),
    cascade: bool = typer.Option(
        True,
        "--cascade/--no-cascade",
        help="Score a few tiles of each image first and stop where they already say real "
        "(calibrated to keep >= 99.5 % of the detector's detections; the report's stage column "
        "says where an image was decided). --no-cascade scores every tile of every image.",
    ),
    batch_size: int = typer.Option(
        DEFAULT_BATCH_SIZE, "--batch-size", min=1, help="Images per batch."
    ),
    workers: int = typer.Option(
        0,
        "--workers",
        min=0,
        max=MAX_WORKERS,
        help="Decoding threads (0: one per core, at most 8). With --engine ray: scoring "
        "actors (0: up to 4/5 of the cluster's CPUs, or one per GPU with --device cuda).",
    ),
    max_pixels: int = max_pixels_option(),
    min_side: int = typer.Option(
        0,
        "--min-side",
        min=0,
        help="Report images with a side shorter than this as too_small instead of scoring them "
        "(0: the detector's tile, 128 px; real thumbnails score high once upscaled).",
        show_default=False,
    ),
    fail_on_error: bool = typer.Option(
        False,
        "--fail-on-error/--no-fail-on-error",
        help="Exit 1 also when an image could not be read.",
    ),
    fail_on_empty: bool = typer.Option(
        False,
        "--fail-on-empty/--no-fail-on-empty",
        help="Exit 1 when no image was found (a misspelled folder must not pass a gate).",
    ),
    respect_gitignore: bool = typer.Option(
        True,
        "--respect-gitignore/--no-ignore",
        help="Skip what .gitignore ignores in folder walks (node_modules and virtual "
        "environments are always skipped).",
    ),
    baseline: Path | None = typer.Option(
        None,
        "--baseline",
        help="Accepted findings (JSON, by content hash): images listed there do not fail the run.",
        show_default=False,
    ),
    write_baseline: Path | None = typer.Option(
        None,
        "--write-baseline",
        help="Record every image flagged now in FILE (a new baseline) and exit 0.",
        show_default=False,
    ),
    cache: Path | None = typer.Option(
        None,
        "--cache",
        help="Keep each image's row in DIR (by content hash and settings) and reuse it when "
        "an unchanged image is scanned again with the same model and settings.",
        show_default=False,
        metavar="DIR",
    ),
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Settings file (TOML). Default: the first imgcheck.toml, or pyproject.toml with "
        "[tool.imgcheck], found walking up from the working folder.",
        show_default=False,
    ),
    show_settings: bool = typer.Option(
        False, "--show-settings", help="Print the settings in force and where each came from."
    ),
    exit_zero: bool = typer.Option(
        False, "--exit-zero", help="Always exit 0 unless the scan itself failed (report only)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no warnings."),
    engine: Engine = typer.Option(
        Engine.LOCAL,
        "--engine",
        help="local: this process. ray: a Ray cluster (Ray Data; the ray extra), same rows; "
        "with -o, a rerun after a crash resumes.",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="--engine ray: the cluster to join (host:port, auto, ray://...). "
        "Default: RAY_ADDRESS, else a Ray instance on this machine.",
        show_default=False,
    ),
    view: str | None = typer.Option(
        None, "--view", hidden=True, help="Measurement only: override the model's view."
    ),
) -> None:
    """Scan images for AI colorization and report a calibrated score per image.

    Exit status: 0 nothing flagged, 1 an image was flagged (or unreadable, with
    --fail-on-error; or none found, with --fail-on-empty), 2 usage, model or internal error.
    """
    from imgcheck.results import Summary

    opts = ScanOptions.from_params(ctx.params)

    def describe(exc: Exception) -> str | None:
        if isinstance(exc, OSError) and opts.output is not None:
            return f"cannot write report {opts.output}: {exc.strerror or exc}"
        if isinstance(exc, OSError):  # a full disk or a dead device behind stdout
            silence_stdout()
            reason = (exc.strerror or str(exc)).lower()
            return f"cannot write to standard output: {reason}"
        return None

    seen = Summary()  # what was scanned, should the reader of stdout go away
    with command_errors("scan", describe=describe):
        opts = _settled(ctx, opts)
        try:
            code = _run(opts, seen)
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, by the exit table for what was
            # scanned until then (a flagged image that was reported still fails a gate).
            silence_stdout()
            code = _exit_code(
                seen.by_verdict.get("colorized", 0) - seen.accepted,
                seen.by_status.get("error", 0),
                fail_on_error=opts.fail_on_error,
                exit_zero=opts.exit_zero,
            )
    raise typer.Exit(code)


def _settled(ctx: typer.Context, opts: ScanOptions) -> ScanOptions:
    """`opts` with the config file and IMGCHECK_* settings applied and checked (exit 2 with one
    line for a bad setting, a missing path or a report that may not be written)."""
    from imgcheck.config import BY_PARAM, ConfigError, resolve

    def given(param: str) -> bool:
        if param == "paths":
            return bool(opts.paths)
        # click's ParameterSource (typer may vendor click, so compared by name)
        source = ctx.get_parameter_source(param)
        return getattr(source, "name", "") in ("COMMANDLINE", "ENVIRONMENT")

    try:
        settings = resolve(
            opts.settings_input(tuple(BY_PARAM)),
            given,
            config=None if opts.config is None else str(opts.config),
        )
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if opts.show_settings:
        typer.echo(settings.describe())
        raise typer.Exit(0)
    opts = opts.with_settings(settings.values)
    if not opts.paths:
        raise _fail("no paths to scan: name them (imgcheck scan PATH...) or set `paths` in config")
    _check_paths(opts.paths)
    if opts.output is not None:  # before the model loads or any image is read
        from imgcheck.report_target import report_target_problem

        problem = report_target_problem(opts.output, opts.paths, force=opts.force)
        if problem is not None:
            raise _fail(problem)
    return opts


def _run(opts: ScanOptions, summary: Summary | None = None) -> int:
    """The scan itself, from the options in force; returns the exit code. `summary` (filled
    as results come) lets the caller see what was scanned if the run is cut short."""
    import time

    from rich.console import Console

    from imgcheck import baseline as baseline_mod
    from imgcheck.progress import ScanProgress, summary_line
    from imgcheck.reports import open_reporter
    from imgcheck.results import Status, Summary, Verdict
    from imgcheck.scanning import Scanner
    from imgcheck.sources import content_sha256
    from imgcheck.sources import iter_sources as iter_inputs  # local paths and URLs

    output, write_baseline = opts.output, opts.write_baseline
    fmt = _choose_format(opts.report, output)
    accepted = None
    if opts.baseline is not None and write_baseline is None:
        try:
            accepted = baseline_mod.load(str(opts.baseline))
        except baseline_mod.BaselineError as exc:
            raise _fail(str(exc)) from None

    if opts.engine == Engine.RAY.value:  # imported only here: ray is heavy
        from imgcheck.engine_ray import RayEngine

        scanner = RayEngine(opts, max_pixels=pixel_limit(opts.max_pixels), address=opts.ray_address)
    else:
        scanner = Scanner.from_options(opts, max_pixels=pixel_limit(opts.max_pixels))
    err = Console(stderr=True, highlight=False)
    if not opts.quiet:
        for message in scanner.warnings:
            warn("scan", message)
    # Only the table goes through Rich on a terminal; a machine format there is written as
    # bytes (escaped, see reports.atomic_output) and the live bar stays off so rows stay intact.
    on_tty = output is None and sys.stdout.isatty()
    to_terminal = on_tty and fmt == "table"
    bar_console = Console(file=sys.stdout) if to_terminal else err
    summary = Summary() if summary is None else summary
    summary.provider, summary.threshold = scanner.provider, scanner.threshold
    summary.variant = scanner.variant
    items = iter_inputs(
        opts.paths,
        recursive=opts.recursive,
        include=opts.include,
        exclude=opts.exclude,
        respect_gitignore=opts.respect_gitignore,
    )
    root = baseline_mod.repo_root()
    findings: list[baseline_mod.Finding] = []
    model_info = _model_info(scanner)
    start = time.perf_counter()
    progress = ScanProgress(
        bar_console, enabled=not opts.quiet and not (on_tty and not to_terminal)
    )
    if fmt == "parquet" and output is None:
        raise _fail("--report parquet needs -o FILE.parquet (one file) or -o FOLDER (parts)")
    if output is not None and output.is_dir() and fmt != "parquet":
        raise _fail(f"-o {output} is a directory")
    if output is not None:  # temp reports of killed runs (kill -9) beside this one
        from imgcheck.atomic import remove_stale_temps

        remove_stale_temps([Path(os.path.realpath(output)).parent])
    # A regular file is written atomically (through a symlink, which stays one); a device or
    # FIFO (-o /dev/null, a named pipe) in place: the rules of imgcheck.atomic.
    journal = _open_journal(opts, fmt, scanner, model_info)
    with _report_output(output, fmt, to_terminal) as raw:
        stream = progress.report_stream(raw) if to_terminal else raw
        # Opened before the bar starts: the report header is printed first, cleanly.
        if fmt == "parquet":
            reporter = _parquet_reporter(output, stream, scanner.threshold, model_info)
        else:
            reporter = open_reporter(
                fmt,
                stream,
                threshold=scanner.threshold,
                model=scanner.model_name,
                model_info=model_info,
            )
        scanner.thumbnails = bool(getattr(reporter, "needs_thumbnails", False))
        cache = _open_cache(opts, fmt, scanner, model_info)
        run = scanner.run if cache is None else partial(cache.merge, run=scanner.run)
        results = run(items) if journal is None else journal.merge(items, run)
        with progress:
            for result in results:
                if accepted is not None:
                    accepted.note_scanned(baseline_mod.repo_path(result.path, root))
                if result.flagged:
                    result.sha256 = result.sha256 or content_sha256(result.path)
                    if write_baseline is not None and result.sha256:
                        rel = baseline_mod.repo_path(result.path, root)
                        findings.append(
                            baseline_mod.Finding(rel, result.sha256, score=result.score)
                        )
                    elif accepted is not None and result.sha256 and accepted.accepts(result.sha256):
                        result.baselined = True
                        summary.accepted += 1
                reporter.add(result)
                summary.add(result)
                progress.advance(result)
            summary.seconds = time.perf_counter() - start
            summary.provider = scanner.provider  # Ray: what the actors really ran on
            reporter.finish(summary)
            stream.flush()
    if cache is not None:
        cache.close()
        if not opts.quiet:
            typer.echo(
                f"imgcheck scan: {cache.hits} of {summary.total} rows from the cache "
                f"{opts.cache} ({cache.stored} rows stored)",
                err=True,
            )
    if journal is not None:
        journal.finish()
        if journal.resumed:
            typer.echo(
                f"imgcheck scan: resumed {output}: {journal.resumed} rows from the interrupted "
                f"run, {journal.saved} scanned now",
                err=True,
            )
    typer.echo(summary_line(summary), err=True)
    if summary.total == 0:
        hint = " (exit 1: --fail-on-empty)" if opts.fail_on_empty else ""
        typer.echo(
            f"imgcheck scan: no images found in {', '.join(opts.paths)}: check the paths, "
            f"--include/--exclude and .gitignore (--no-ignore){hint}",
            err=True,
        )
    if write_baseline is not None:
        baseline_mod.write(write_baseline, findings, model=model_info, threshold=scanner.threshold)
        typer.echo(
            f"imgcheck scan: wrote {len(findings)} accepted findings to {write_baseline}", err=True
        )
        return 0
    if accepted is not None and not opts.quiet:
        stale = accepted.stale(root)
        for entry in stale[:20]:
            warn(
                "scan",
                f"stale baseline entry {entry.path} (sha256 {entry.sha256[:12]}): no flagged "
                "image has this content any more; rewrite the baseline with --write-baseline",
            )
        if len(stale) > 20:
            warn("scan", f"... and {len(stale) - 20} more stale baseline entries")
    if summary.total == 0 and opts.fail_on_empty and not opts.exit_zero:
        return 1
    return _exit_code(
        summary.by_verdict.get(Verdict.COLORIZED.value, 0) - summary.accepted,
        summary.by_status.get(Status.ERROR.value, 0),
        fail_on_error=opts.fail_on_error,
        exit_zero=opts.exit_zero,
    )


def _open_journal(opts: ScanOptions, fmt: str, scanner: object, model_info: dict) -> object:
    """The resume journal (`imgcheck.journal`) where this scan keeps one: a parquet folder
    report (it is the journal), and any `-o` of the Ray engine. None otherwise."""
    from imgcheck.reports.parquet import is_single_file

    output = opts.output
    if output is None:
        return None
    folder_report = fmt == "parquet" and not is_single_file(output)
    if not folder_report and opts.engine != Engine.RAY.value:
        return None
    from imgcheck.journal import Journal, JournalError

    settings = {**_row_settings(opts, scanner, model_info), "thumbnails": fmt == "html"}
    try:
        return Journal.open(output, fmt, settings, full=fmt == "html")
    except JournalError as exc:
        raise _fail(str(exc)) from None


def _row_settings(opts: ScanOptions, scanner: object, model_info: dict) -> dict[str, Any]:
    """The settings that decide a scan's rows, as the journal and the cache record them."""
    return {
        "model": model_info,
        "threshold": scanner.threshold,  # type: ignore[attr-defined]
        "view": scanner.spec.to_dict(),  # type: ignore[attr-defined]
        "max_pixels": opts.max_pixels,
        "min_side": opts.min_side,
    }


def _open_cache(opts: ScanOptions, fmt: str, scanner: object, model_info: dict) -> Any:
    """The scan cache (`imgcheck.cache`) when --cache asks for one and this scan can use it;
    None otherwise (with a warning saying why, unless --quiet)."""
    if opts.cache is None:
        return None
    why = None
    if opts.engine == Engine.RAY.value:
        why = "--cache is not used with --engine ray"
    elif fmt == "html":
        why = "--cache is not used with --report html (its thumbnails need the pixels)"
    if why is None:
        from imgcheck import __version__
        from imgcheck.cache import CacheError, ScanCache

        cascade = scanner.cascade  # type: ignore[attr-defined]
        settings = {
            **_row_settings(opts, scanner, model_info),
            "imgcheck": __version__,
            "cascade": None if cascade is None else [list(s) for s in cascade.stages],
        }
        try:
            cache, why = ScanCache.open(opts.cache, settings)
        except CacheError as exc:
            raise _fail(str(exc)) from None
        if cache is not None:
            return cache
    if not opts.quiet:
        warn("scan", why)
    return None


def _report_output(output: Path | None, fmt: str, to_terminal: bool) -> object:
    """Where the report is written: the atomic text stream of every format; for parquet a
    binary atomic file, or nothing for a folder of parts (the journal writes those)."""
    import contextlib
    import io

    from imgcheck.reports import atomic_output

    if fmt != "parquet":
        return atomic_output(output, rich_terminal=to_terminal)
    from imgcheck.reports.parquet import is_single_file

    if output is not None and is_single_file(output):
        from imgcheck.atomic import atomic_open

        return atomic_open(output, "wb")
    return contextlib.nullcontext(io.StringIO())


def _parquet_reporter(output: Path | None, stream: object, threshold: float, model: dict) -> object:
    from imgcheck.reports.parquet import ParquetFolderReporter, ParquetReporter, is_single_file

    if output is not None and is_single_file(output):
        return ParquetReporter(stream, threshold=threshold, model=model)  # type: ignore[arg-type]
    return ParquetFolderReporter(output)  # type: ignore[arg-type]


def _model_info(scanner: object) -> dict[str, str]:
    """The detector as the machine-readable reports name it: file name, sha256 and variant,
    never an absolute path (which differs per machine and would leak site-packages)."""
    from imgcheck.models import DEFAULT_DIR, sha256_file

    info = scanner.info  # type: ignore[attr-defined]
    digest = info.meta.get("sha256") if isinstance(info.meta, dict) else None
    shipped = os.path.dirname(os.path.abspath(info.path)) == str(DEFAULT_DIR)
    return {
        "name": ("imgcheck/" if shipped else "") + info.path.name,
        "sha256": digest or sha256_file(info.path),
        "variant": scanner.variant,  # type: ignore[attr-defined]
    }
