"""All arguments of a training run, in one dataclass that is saved as `config.json` (timm-style).

Kept free of torch so that the CLI can read the defaults (for `--help`) without the training
extra installed. Every field is a plain JSON type, so `config.json` round-trips exactly and a
resumed run continues with the very arguments it was started with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

PHASES = ("l1", "gan", "cls")  # generator pre-training, adversarial training, classifier

# Settings that may differ between the start of a run and its `--resume`: they change where and
# how fast the run executes, never what it computes.
RUNTIME_FIELDS = ("device", "workers", "threads", "resume")


class TrainError(Exception):
    """A problem the user can fix (bad flag, bad data, existing run): one line, exit code 2."""


@dataclass
class TrainConfig:
    data: str = ""
    out: str = ""
    # Schedule. Defaults: the shipped model, ~270 photos, ~38 min on 2 busy CPU cores with
    # --threads 1 (measured: L1 ~21 s, GAN ~29 s, classifier ~78 s per epoch, evaluation ~4 min).
    # val_l1 of the L1 phase flattens after ~15 epochs; the GAN phase is what adds colour.
    epochs_l1: int = 15
    epochs_gan: int = 25
    epochs_cls: int = 10
    batch_size: int = 16
    lr: float = 2e-4
    # Generator loss in the GAN phase: GAN + lambda_ce * bin CE (bins head) + lambda_l1 * L1 +
    # lambda_chroma * chroma matching. L1 pulls ambiguous colours to their brown median, so with
    # the bins head it is only a light anchor.
    lambda_ce: float = 1.0
    lambda_l1: float = 10.0
    lambda_chroma: float = 0.0
    # Geometry. `crop`: generator training crops; `cls_crop`: classifier crops = the view's crop.
    crop: int = 128
    cls_crop: int = 256
    cls_crops: int = 2  # crops per (real, colorized) pair and photo, to amortise colorizing
    work_size: int = 256
    max_side: int = 1024
    view_grid: int = 2
    # Classifier fakes: generator snapshots and baseline colorizers (comma separated).
    cls_sources: str = "l1,gan_mid,gan,lut,chroma_lowres"
    jpeg_prob: float = 0.8
    blur_prob: float = 0.3
    # Calibration: at most this share of real validation photos is flagged.
    fpr: float = 0.01
    # Data.
    val_percent: int = 20
    max_images: int = 0  # 0 = all
    samples: int = 4  # rows of the per-epoch comparison grid
    # Networks (see nets.ColorizerConfig / DiscriminatorConfig).
    g_base: int = 16
    g_depth: int = 4
    g_max_channels: int = 128
    g_head: str = "bins"  # "bins" (ab distribution, annealed mean) or "regression"
    g_temperature: float = 0.38  # annealed-mean temperature of the bins head
    d_base: int = 32
    d_layers: int = 3
    # Runtime.
    seed: int = 0
    device: str = "auto"
    workers: int = 2
    threads: int = 0  # torch intra-op threads in the main process; 0 = torch's default
    resume: bool = False
    log_every: int = 10
    ckpt_every: int = 100  # steps; a checkpoint is also written at the end of every epoch
    eval_sources: str = "gan,l1,lut,exemplar,knn"  # colorizers the final report evaluates
    # Detector stage (trainer.detector_stage): the zoo, the view, the LOFO protocol.
    zoo_families: str = (
        "gan,ours_pre,cnn,onnx,exemplar,knn,lut,propagation,tint,oracle_lowres,oracle_tone,"
        "oracle_shift"
    )
    detector: str = "forensic"  # "forensic" (zoo + forensic head) or "patchgan" (0.1: cls phase)
    lofo: bool = False  # also run leave-one-family-out in the detector stage (~15 min on CPU)
    zoo_onnx: str = ""  # colorizer ONNX files for the zoo's "onnx" family (comma separated)
    zoo_per_photo: int = 3  # zoo families that colorize each training photo
    det_max_side: int = 512  # detector view: long side of the image the tiles cover
    det_tile: int = 128  # detector view: tile size

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
        if self.g_temperature <= 0:
            raise ValueError("--g-temperature must be > 0")
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
