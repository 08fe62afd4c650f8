"""`imgcheck train`: the command-line face of `trainer.train.train`.

Imports only typer, pathlib, enum and the torch-free `TrainConfig` at module level, so
`imgcheck --help` stays fast and works without the training extra; torch comes in the body.
Every option maps one-to-one onto a `TrainConfig` field (its default is the field's default).
"""

from __future__ import annotations

import importlib.util
from enum import Enum
from pathlib import Path

import typer

from imgcheck.trainer.config import TrainConfig

_D = TrainConfig()
_SCHEDULE, _DATA, _NETS, _RUN = "Schedule", "Data and augmentation", "Networks", "Run"

INSTALL_HINT = (
    "imgcheck train needs PyTorch (the training extra). Install the CPU build of torch first,\n"
    "  pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu\n"
    "(or a CUDA build of your choice), then the extra:\n"
    "  pip install 'imgcheck[train]'"
)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def train_command(
    data: Path = typer.Option(
        ..., "--data", help="Folder of colour photos (searched recursively; sub-folders are fine)."
    ),
    out: Path = typer.Option(..., "--out", help="Run folder to create, e.g. runs/NAME."),
    epochs_l1: int = typer.Option(
        _D.epochs_l1, help="Generator pre-training epochs (L1 only).", rich_help_panel=_SCHEDULE
    ),
    epochs_gan: int = typer.Option(
        _D.epochs_gan, help="Adversarial epochs (GAN + L1 + chroma).", rich_help_panel=_SCHEDULE
    ),
    epochs_cls: int = typer.Option(
        _D.epochs_cls, help="Detector (classifier) epochs.", rich_help_panel=_SCHEDULE
    ),
    batch_size: int = typer.Option(_D.batch_size, rich_help_panel=_SCHEDULE),
    lr: float = typer.Option(
        _D.lr, help="Adam learning rate (all phases).", rich_help_panel=_SCHEDULE
    ),
    lambda_ce: float = typer.Option(
        _D.lambda_ce, help="Weight of the ab-bin cross-entropy (bins head).", rich_help_panel=_SCHEDULE
    ),
    lambda_l1: float = typer.Option(_D.lambda_l1, rich_help_panel=_SCHEDULE),
    lambda_chroma: float = typer.Option(
        _D.lambda_chroma,
        help="Weight of the anti-sepia chroma matching loss.",
        rich_help_panel=_SCHEDULE,
    ),
    crop: int = typer.Option(
        _D.crop, help="Generator training crop (multiple of 16).", rich_help_panel=_DATA
    ),
    cls_crop: int = typer.Option(
        _D.cls_crop, help="Classifier crop = the detector view's crop.", rich_help_panel=_DATA
    ),
    cls_crops: int = typer.Option(
        _D.cls_crops, help="Crops per photo pair in the classifier phase.", rich_help_panel=_DATA
    ),
    work_size: int = typer.Option(
        _D.work_size, help="Size the colorizer runs at (deployed).", rich_help_panel=_DATA
    ),
    max_side: int = typer.Option(
        _D.max_side, help="Photos are downscaled to this long side.", rich_help_panel=_DATA
    ),
    view_grid: int = typer.Option(
        _D.view_grid, help="Detector view: grid x grid crops per image.", rich_help_panel=_DATA
    ),
    cls_sources: str = typer.Option(
        _D.cls_sources, help="Classifier fakes: snapshots and baselines.", rich_help_panel=_DATA
    ),
    detector: str = typer.Option(
        _D.detector,
        help="forensic: zoo + forensic discriminator (default); patchgan: the 0.1 classifier phase.",
        rich_help_panel=_DATA,
    ),
    lofo: bool = typer.Option(
        _D.lofo, "--lofo/--no-lofo", help="Also run leave-one-family-out (the generalization table).",
        rich_help_panel=_DATA,
    ),
    zoo_families: str = typer.Option(
        _D.zoo_families, help="Colorizer zoo families for the detector.", rich_help_panel=_DATA
    ),
    zoo_onnx: str = typer.Option(
        _D.zoo_onnx, help="Colorizer ONNX files for the zoo's onnx family.", rich_help_panel=_DATA
    ),
    zoo_per_photo: int = typer.Option(
        _D.zoo_per_photo, help="Zoo families per training photo.", rich_help_panel=_DATA
    ),
    det_max_side: int = typer.Option(
        _D.det_max_side, help="Detector view: long side the tiles cover.", rich_help_panel=_DATA
    ),
    det_tile: int = typer.Option(_D.det_tile, help="Detector view: tile size.", rich_help_panel=_DATA),
    eval_sources: str = typer.Option(
        _D.eval_sources, help="Colorizers in the final report.", rich_help_panel=_DATA
    ),
    jpeg_prob: float = typer.Option(_D.jpeg_prob, rich_help_panel=_DATA),
    blur_prob: float = typer.Option(_D.blur_prob, rich_help_panel=_DATA),
    fpr: float = typer.Option(
        _D.fpr, help="Calibration: max share of real val photos flagged.", rich_help_panel=_DATA
    ),
    val_percent: int = typer.Option(_D.val_percent, rich_help_panel=_DATA),
    max_images: int = typer.Option(
        _D.max_images, help="Use at most N photos (0 = all), for quick runs.", rich_help_panel=_DATA
    ),
    samples: int = typer.Option(
        _D.samples, help="Rows of the per-epoch comparison grid.", rich_help_panel=_DATA
    ),
    g_base: int = typer.Option(_D.g_base, rich_help_panel=_NETS),
    g_depth: int = typer.Option(_D.g_depth, rich_help_panel=_NETS),
    g_max_channels: int = typer.Option(_D.g_max_channels, rich_help_panel=_NETS),
    g_head: str = typer.Option(
        _D.g_head, help="Colorizer head: bins (ab distribution) or regression.", rich_help_panel=_NETS
    ),
    g_temperature: float = typer.Option(
        _D.g_temperature, help="Annealed-mean temperature (bins head).", rich_help_panel=_NETS
    ),
    d_base: int = typer.Option(_D.d_base, rich_help_panel=_NETS),
    d_layers: int = typer.Option(_D.d_layers, rich_help_panel=_NETS),
    seed: int = typer.Option(_D.seed, rich_help_panel=_RUN),
    device: Device = typer.Option(Device.auto, rich_help_panel=_RUN),
    workers: int = typer.Option(
        _D.workers, help="DataLoader worker processes (decoding).", rich_help_panel=_RUN
    ),
    threads: int = typer.Option(
        _D.threads,
        help="Torch threads in the main process (0 = all cores). On a busy shared machine 1 "
        "can be much faster: idle OpenMP threads spin while others wait for a core.",
        rich_help_panel=_RUN,
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in --out from its last checkpoint.",
        rich_help_panel=_RUN,
    ),
    log_every: int = typer.Option(
        _D.log_every, help="Steps between metrics.jsonl rows.", rich_help_panel=_RUN
    ),
    ckpt_every: int = typer.Option(
        _D.ckpt_every,
        help="Steps between checkpoints (also at every epoch end).",
        rich_help_panel=_RUN,
    ),
) -> None:
    """Train the colorizer and the detector on a folder of colour photos (needs torch).

    Multi-GPU: torchrun --nproc_per_node N -m imgcheck.trainer --data DIR --out runs/NAME
    """
    args = dict(locals())  # first statement: exactly the options, one per TrainConfig field
    if importlib.util.find_spec("torch") is None:
        typer.echo(INSTALL_HINT, err=True)
        raise typer.Exit(2)
    from imgcheck.trainer.config import TrainError
    from imgcheck.trainer.train import train

    args.update(data=str(data), out=str(out), device=device.value)
    cfg = TrainConfig.from_dict(args)
    try:
        train(cfg)
    except TrainError as exc:
        typer.echo(f"imgcheck train: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted; continue with: --out {out} --resume", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # one line and exit 2 (docs/ARCHITECTURE.md), never a traceback
        import os

        if os.environ.get("IMGCHECK_DEBUG"):
            raise
        from imgcheck.cli_common import internal_error

        where = f"cannot resume {out} (a damaged run folder?): " if resume else ""
        typer.echo(f"imgcheck train: {where}{internal_error(exc)}", err=True)
        raise typer.Exit(2) from None
