"""All arguments of a training run, in one dataclass that is saved as `config.json` (timm-style).

Kept free of torch so that the CLI can read the defaults (for `--help`) without the training
extra installed. Every field is a plain JSON type, so `config.json` round-trips exactly and a
resumed run continues with the very arguments it was started with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

PHASES = ("l1", "gan", "cls")  # generator pre-training, adversarial training, classifier

# Settings that may differ between the start of a run and its `--resume`: they change where and
# how fast the run executes, never what it computes.
RUNTIME_FIELDS = ("device", "workers", "threads", "resume")


class TrainError(Exception):
    """A problem the user can fix (bad flag, bad data, existing run): one line, exit code 2."""


SCHEDULE, DATA, NETS, RUN = "Schedule", "Data and augmentation", "Networks", "Run"


def option(default: Any, help: str, panel: str, **typer_args: Any) -> Any:
    """A `TrainConfig` field that is also an `imgcheck train` option: its default, help and
    help panel live here once, and `trainer.cli` builds the Typer option from them (flag name:
    `--field-name`; a bool gets `--name/--no-name`). Extras: `flags=("--resume",)` replaces
    the flag names, `required=True` (no default), `path=True` (shown as PATH), `choices=(...)`
    (validated by click)."""
    return field(default=default, metadata={"help": help, "panel": panel, **typer_args})


@dataclass
class TrainConfig:
    """Every argument of a run. Each field is one `imgcheck train` option (see `option`)."""

    data: str = option(
        "", "Folder of colour photos (searched recursively; sub-folders are fine).", "",
        required=True, path=True,
    )  # fmt: skip
    out: str = option("", "Run folder to create, e.g. runs/NAME.", "", required=True, path=True)
    # Schedule. Defaults: the shipped model's run (v4: 583 training photos, 2 CPU cores,
    # --threads 2; measured 38-46 s per pre-training epoch, 48-51 s per GAN epoch). Its val_l1
    # had flattened by epoch ~25; it was stopped after 32 of the 40 (MODEL_CARD.md).
    epochs_l1: int = option(40, "Generator pre-training epochs (reconstruction only).", SCHEDULE)
    epochs_gan: int = option(6, "Adversarial epochs (GAN + L1 + chroma).", SCHEDULE)
    epochs_cls: int = option(10, "Detector (classifier) epochs (patchgan detector).", SCHEDULE)
    batch_size: int = option(16, "Photos per training step.", SCHEDULE)
    lr: float = option(5e-4, "Adam learning rate (all phases).", SCHEDULE)
    # Generator loss in the GAN phase: GAN + lambda_ce * bin CE (bins head) + lambda_rec *
    # reconstruction (--g-loss: MSE or L1) + lambda_chroma * chroma matching. MSE regresses to
    # the conditional mean (best PSNR; the decode gain restores vividness), L1 to the median.
    lambda_ce: float = option(1.0, "Weight of the ab-bin cross-entropy (bins head).", SCHEDULE)
    lambda_rec: float = option(
        10.0, "Weight of the reconstruction loss (--g-loss) in the GAN phase.", SCHEDULE
    )
    lambda_chroma: float = option(0.0, "Weight of the anti-sepia chroma matching loss.", SCHEDULE)
    # Geometry. `crop`: generator training crops; `cls_crop`: classifier crops = the view's crop.
    crop: int = option(128, "Generator training crop (multiple of 2^--g-depth).", DATA)
    cls_crop: int = option(256, "Classifier crop = the detector view's crop.", DATA)
    # crops per (real, colorized) pair and photo, to amortise colorizing
    cls_crops: int = option(2, "Crops per photo pair in the classifier phase.", DATA)
    work_size: int = option(256, "Size the colorizer runs at (deployed).", DATA)
    max_side: int = option(1024, "Photos are downscaled to this long side.", DATA)
    view_grid: int = option(2, "Detector view: grid x grid crops per image.", DATA)
    # Classifier fakes: generator snapshots and baseline colorizers (comma separated).
    cls_sources: str = option(
        "l1,gan_mid,gan,lut,chroma_lowres", "Classifier fakes: snapshots and baselines.", DATA
    )
    jpeg_prob: float = option(0.8, "Share of training crops JPEG-compressed (augmentation).", DATA)
    blur_prob: float = option(0.3, "Share of training crops blurred (augmentation).", DATA)
    # Calibration: at most this share of real validation photos is flagged.
    fpr: float = option(0.01, "Calibration: max share of real val photos flagged.", DATA)
    # Data.
    val_percent: int = option(20, "Percent of the photos held out for validation.", DATA)
    max_images: int = option(0, "Use at most N photos (0 = all), for quick runs.", DATA)
    samples: int = option(4, "Rows of the per-epoch comparison grid.", DATA)
    # Networks (see nets.ColorizerConfig / DiscriminatorConfig).
    g_base: int = option(16, "Colorizer: channels of the first U-Net level.", NETS)
    g_depth: int = option(
        5, "Colorizer: U-Net levels (crop and work size: multiples of 2^depth).", NETS
    )
    g_max_channels: int = option(192, "Colorizer: channel cap of the deepest levels.", NETS)
    g_head: str = option(
        "regression", "Colorizer head: regression (ab) or bins (ab distribution).", NETS,
        choices=("regression", "bins"),
    )  # fmt: skip
    g_loss: str = option(
        "psnr", "Regression head: reconstruction loss (psnr: per-image log MSE in sRGB).", NETS,
        choices=("psnr", "mse", "l1"),
    )  # fmt: skip
    g_temperature: float = option(0.38, "Annealed-mean temperature (bins head).", NETS)
    g_gain: float = option(
        1.0, "Chroma gain of the regression head (chosen after training on val photos).", NETS
    )
    d_base: int = option(32, "PatchGAN discriminator: channels of the first layer.", NETS)
    d_layers: int = option(3, "PatchGAN discriminator: strided layers.", NETS)
    # Runtime.
    seed: int = option(0, "Random seed (split, crops, initialisation).", RUN)
    device: str = option("auto", "Where to train.", RUN, choices=("auto", "cpu", "cuda"))
    workers: int = option(2, "DataLoader worker processes (decoding).", RUN)
    threads: int = option(
        0,
        "Torch threads in the main process (0 = all cores). On a busy shared machine 1 can be "
        "much faster: idle OpenMP threads spin while others wait for a core.",
        RUN,
    )
    resume: bool = option(
        False, "Continue the run in --out from its last checkpoint.", RUN, flags=("--resume",)
    )
    log_every: int = option(10, "Steps between metrics.jsonl rows.", RUN)
    ckpt_every: int = option(100, "Steps between checkpoints (also at every epoch end).", RUN)
    eval_sources: str = option("gan,l1,lut,exemplar,knn", "Colorizers in the final report.", DATA)
    # Detector stage (trainer.detector_stage): the zoo, the view, the LOFO protocol.
    zoo_families: str = option(
        "gan,ours_pre,cnn,cnn_bins,shuffle,onnx,exemplar,knn,lut,propagation,tint,regions,"
        "oracle_lowres,oracle_tone,oracle_shift",
        "Colorizer zoo families for the detector.",
        DATA,
    )
    detector: str = option(
        "forensic",
        "forensic: zoo + forensic discriminator (default); patchgan: the 0.1 classifier phase.",
        DATA,
    )
    lofo: bool = option(
        False, "Also run leave-one-family-out (the generalization table, ~15 min on CPU).", DATA
    )
    zoo_onnx: str = option("", "Colorizer ONNX files for the zoo's onnx family.", DATA)
    zoo_per_photo: int = option(3, "Zoo families per training photo.", DATA)
    det_max_side: int = option(512, "Detector view: long side the tiles cover.", DATA)
    det_tile: int = option(128, "Detector view: tile size.", DATA)

    def validate(self) -> None:
        """Reject settings the networks cannot run with, before any data is read."""
        try:
            self._check()
        except ValueError as exc:
            raise TrainError(str(exc)) from None

    def _check(self) -> None:
        multiple = 2**self.g_depth
        if self.crop % multiple or self.work_size % multiple:
            raise ValueError(f"--crop and --work-size must be multiples of {multiple}")
        if self.cls_crop < 32:
            raise ValueError("--cls-crop must be at least 32 (the discriminator's minimum)")
        if not 0 <= self.val_percent < 100:
            raise ValueError("--val-percent must be in [0, 100)")
        if min(self.epochs_l1, self.epochs_gan, self.epochs_cls) < 0:
            raise ValueError("epoch counts must be >= 0")
        if self.batch_size < 1 or self.cls_crops < 1:
            raise ValueError("--batch-size and --cls-crops must be >= 1")
        if self.detector not in ("forensic", "patchgan"):
            raise ValueError("--detector must be forensic or patchgan")
        if self.det_tile < 32 or self.det_max_side < self.det_tile:
            raise ValueError("--det-tile must be >= 32 and <= --det-max-side")
        if self.g_head not in ("bins", "regression"):
            raise ValueError("--g-head must be bins or regression")
        if self.g_loss not in ("psnr", "mse", "l1"):
            raise ValueError("--g-loss must be psnr, mse or l1")
        if self.g_temperature <= 0 or self.g_gain <= 0:
            raise ValueError("--g-temperature and --g-gain must be > 0")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError("--device must be auto, cpu or cuda")
        if not 0.0 <= self.fpr <= 1.0:
            raise ValueError("--fpr must be in [0, 1]")

    def sources(self, which: str) -> list[str]:
        return [s.strip() for s in getattr(self, which).split(",") if s.strip()]

    def epochs(self, phase: str) -> int:
        """Epochs of a phase; the "cls" loop only trains the 0.1 PatchGAN detector."""
        cls_epochs = self.epochs_cls if self.detector == "patchgan" else 0
        return {"l1": self.epochs_l1, "gan": self.epochs_gan, "cls": cls_epochs}[phase]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
