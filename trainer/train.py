"""The training loop: L1 pre-training, adversarial training, then the classifier phase.

One readable loop over three phases (nanoGPT-style), with the whole run state in one checkpoint:

1. `l1` (pre-training): the U-Net learns L -> ab by reconstruction alone (`--g-loss`: MSE,
   the conditional mean, or L1; the bins head: rebalanced cross-entropy). That generator is
   kept (`generator_l1`) and reported beside the GAN one: the honest baseline a GAN must beat.
2. `gan`: pix2pix. D step on `fake.detach()` (positive = colorized), then G step with
   GAN + lambda_rec * reconstruction + lambda_chroma * chroma matching. Against the sepia
   collapse (L1's optimum under colour ambiguity is the desaturated median) we match, per
   image, the sorted chroma magnitudes |ab| of the output to those of the photo: the 1-D
   Wasserstein distance between the two chroma distributions. It asks for "as much colour, in
   as many pixels, as the photo has" without dictating which hue, so it does not fight the L1
   term on ambiguous hues the way a per-pixel saturated-pixel re-weighting does.
3. `cls`: the discriminator becomes the detector. It is trained on whole-image logits (the mean
   patch logit, exactly the deployed score) of real crops vs crops of the same photos colorized
   through `pipeline.colorize_full` by frozen generator snapshots (end of L1, mid GAN, final GAN)
   and non-GAN baselines, with identical degradations on both classes (see `data.degrade`).

Then, on the validation split, the detector view (`make_views` + `aggregate` over
`pipeline.detect`) scores every photo, the threshold is set so that at most `fpr` of the real
photos are flagged, and report.json/report.md and `checkpoints/final.pt` are written.

Resuming: the checkpoint holds models, optimizers, phase/epoch/batch position, step, snapshots,
RNG states and the metrics.jsonl offset; data randomness is a function of (seed, phase, epoch,
index), so the steps after a resume are the steps an uninterrupted run would have taken.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

import imgcheck
from imgcheck.metrics import binary_report, threshold_for_fpr
from imgcheck.trainer import baselines, report
from imgcheck.trainer.bins import ab_prior_weights, bins_loss
from imgcheck.trainer.colour import lab_normalized_to_rgb, rgb_to_lab_normalized
from imgcheck.trainer.config import PHASES, RUNTIME_FIELDS, TrainConfig, TrainError
from imgcheck.trainer.data import (
    ClassifierPairs,
    Colorizer,
    ColourCrops,
    EpochSampler,
    Split,
    build_split,
    colorize_image,
    load_rgb,
    to_tensor,
    worker_init,
)
from imgcheck.trainer.nets import (
    ColorizerConfig,
    DiscriminatorConfig,
    PatchDiscriminator,
    UNetColorizer,
    frozen_generator,
    generator_config,
)
from imgcheck.trainer.pipeline import colorize_full, detect
from imgcheck.trainer.runs import (
    MetricsLog,
    RunDir,
    load_checkpoint,
    load_json,
    resume_state,
    save_json,
    save_torch,
    set_rng_state,
    versions,
)
from imgcheck.view import ViewSpec, aggregate, make_views

VAL_LOSS_IMAGES = 32  # validation photos in the per-epoch val_l1 (fixed, first by path)
BASELINE_FIT_IMAGES = 256  # training photos the baseline colorizers are fitted on


# --------------------------------------------------------------------------- devices


@dataclass
class Env:
    """Where this process runs: device, DDP rank and world size."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast on CUDA (no loss scaler needed); plain fp32 on CPU."""
        return (
            torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else contextlib.nullcontext()
        )

    def put(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.cuda and x.dim() == 4 else x


def setup_env(device: str) -> Env:
    """Pick the device; join the process group when started by torchrun (WORLD_SIZE > 1)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda: no CUDA device is visible to torch")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = 0, 0
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo")
        rank = dist.get_rank()
    if use_cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return Env(torch.device("cuda", local) if use_cuda else torch.device("cpu"), rank, world)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in unwrap(model).state_dict().items()}


# --------------------------------------------------------------------------- steps


def reconstruction(fake: torch.Tensor, lab: torch.Tensor, kind: str) -> torch.Tensor:
    """The regression loss of predicted ab `fake` against the photo `lab` (normalised Lab).

    "psnr": the mean over images of log(sRGB MSE), i.e. minus the mean per-image PSNR up to a
    constant, the measure the colorizer is judged by. Unlike a pooled MSE it weighs an error by
    how little colour the photo has, so it does not pay for vivid skies with a cast over a
    near-grey photo (in dB, a cast on a muted photo costs more than the same error on a vivid
    one gains). "mse": pooled MSE on ab (the conditional mean). "l1": the median.
    """
    L, ab = lab[:, :1], lab[:, 1:]
    if kind == "psnr":
        err = (lab_normalized_to_rgb(L, fake) - lab_normalized_to_rgb(L, ab)).pow(2)
        return torch.log(err.flatten(1).mean(1) + PSNR_FLOOR).mean()
    return F.mse_loss(fake, ab) if kind == "mse" else F.l1_loss(fake, ab)


PSNR_FLOOR = 1e-4  # MSE floor of the "psnr" loss: a photo within 40 dB gives no more gradient


def l1_step(
    G: nn.Module,
    opt: torch.optim.Optimizer,
    lab: torch.Tensor,
    env: Env,
    weights: torch.Tensor | None = None,
    loss_kind: str = "l1",
) -> dict:
    """Phase 1 (pre-training): rebalanced bin cross-entropy for the bins head, `loss_kind`
    reconstruction for regression."""
    L, ab = lab[:, :1], lab[:, 1:]
    with env.autocast():
        fake, logits = G(L, with_logits=True)
    if logits is not None and weights is not None:
        loss = bins_loss(logits, ab, weights)
        out = {"loss_ce": loss.detach(), "loss_l1": F.l1_loss(fake.float(), ab).detach()}
    else:
        loss = reconstruction(fake.float(), lab, loss_kind)
        out = {"loss_rec": loss.detach(), "loss_l1": F.l1_loss(fake.float(), ab).detach()}
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return out


def chroma_matching(fake_ab: torch.Tensor, real_ab: torch.Tensor) -> torch.Tensor:
    """Mean |sorted chroma(fake) - sorted chroma(real)| per image: W1 between chroma histograms."""
    cf = fake_ab.pow(2).sum(1).add(1e-6).sqrt().flatten(1).sort(dim=1).values
    cr = real_ab.pow(2).sum(1).add(1e-6).sqrt().flatten(1).sort(dim=1).values
    return (cf - cr).abs().mean()


def gan_step(
    G: nn.Module,
    D: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    lab: torch.Tensor,
    cfg: TrainConfig,
    env: Env,
    weights: torch.Tensor | None = None,
) -> dict:
    """Phase 2: pix2pix. Real and fake go through D in one batch (one DDP forward per step)."""
    L, ab = lab[:, :1], lab[:, 1:]
    with env.autocast():
        fake, bins = G(L, with_logits=True)
        fake = fake.float()
        logits = D(torch.cat([lab, torch.cat([L, fake.detach()], 1)])).float()
    real_logits, fake_logits = logits.chunk(2)
    loss_d = 0.5 * (
        F.binary_cross_entropy_with_logits(real_logits, torch.zeros_like(real_logits))
        + F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    )
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    # G step through the bare D with frozen weights: no D gradients, no DDP hook on D.
    bare_d = unwrap(D)
    bare_d.requires_grad_(False)
    with env.autocast():
        g_logits = bare_d(torch.cat([L, fake], 1)).float()
    bare_d.requires_grad_(True)
    loss_gan = F.binary_cross_entropy_with_logits(g_logits, torch.zeros_like(g_logits))
    loss_rec = reconstruction(fake, lab, cfg.g_loss)
    loss_chroma = chroma_matching(fake, ab)
    loss_g = loss_gan + cfg.lambda_rec * loss_rec + cfg.lambda_chroma * loss_chroma
    extra = {}
    if bins is not None and weights is not None:
        loss_ce = bins_loss(bins, ab, weights)
        loss_g = loss_g + cfg.lambda_ce * loss_ce
        extra["loss_ce"] = loss_ce.detach()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {
        **extra,
        "loss_d": loss_d.detach(),
        "loss_gan": loss_gan.detach(),
        "loss_rec": loss_rec.detach(),
        "loss_l1": F.l1_loss(fake.detach(), ab),
        "loss_chroma": loss_chroma.detach(),
    }


def cls_step(D: nn.Module, opt: torch.optim.Optimizer, pairs: torch.Tensor, env: Env) -> dict:
    """Phase 3: BCE on the image logit (mean patch logit, the deployed score); 1 = colorized."""
    x = pairs.flatten(
        0, 2
    )  # (B, crops, 2, 3, c, c) -> (B * crops * 2, 3, c, c), real/fake alternate
    labels = (torch.arange(x.shape[0], device=x.device) % 2).float()
    lab = rgb_to_lab_normalized(x.float() / 255.0)
    with env.autocast():
        logits = PatchDiscriminator.image_logit(D(lab)).float()
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    acc = ((logits > 0).float() == labels).float().mean()
    return {"loss_cls": loss.detach(), "acc": acc.detach()}


# --------------------------------------------------------------------------- colorizers


def build_colorizers(
    names: list[str],
    snapshots: dict[str, dict[str, torch.Tensor]],
    gcfg: ColorizerConfig,
    cfg: TrainConfig,
    photos: Callable[[], list[torch.Tensor]],
    device: torch.device | None = None,
) -> dict[str, Colorizer]:
    """Name -> CPU colorizer: generator snapshots via the deployed `colorize_full`, or baselines.

    Names that are not available (e.g. `gan_mid` when there is one GAN epoch) are left out.
    `photos` is called only if a baseline needs fitting (training photos, never validation).
    Generators run on `device` (CPU by default: the classifier's DataLoader workers use them).
    """
    out: dict[str, Colorizer] = {}
    for name in names:
        if name in snapshots:
            G = frozen_generator(snapshots[name], gcfg).to(device or "cpu")
            out[name] = functools.partial(colorize_full, G, work_size=cfg.work_size)
        elif name in baselines.TRAINING or name in baselines.EVAL_ONLY:
            out[name] = baselines.build_baseline(name, photos(), cfg.work_size, cfg.seed)
    return out


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def image_score(D: nn.Module, image: Image.Image, spec: ViewSpec, env: Env) -> float:
    """One photo's detector score exactly as scan computes it: view crops -> detect -> aggregate."""
    crops, _ = make_views(image, spec)
    x = env.put(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0)
    scores, _ = detect(D, x)  # fp32, no autocast: the threshold must hold for the ONNX model
    return aggregate(scores.float().cpu().numpy())


@torch.no_grad()
def val_l1(G: nn.Module, images: torch.Tensor, env: Env) -> float:
    """L1 on normalised ab of fixed validation photos squashed to work_size (as deployed)."""
    total = 0.0
    for batch in images.split(8):
        lab = rgb_to_lab_normalized(env.put(batch).float() / 255.0)
        with env.autocast():
            fake = G(lab[:, :1]).float()
        total += F.l1_loss(fake, lab[:, 1:], reduction="sum").item() / fake[0].numel()
    return total / len(images)


@torch.no_grad()
def write_grid(
    G: nn.Module, photos: list[torch.Tensor], path: Path, cfg: TrainConfig, env: Env
) -> None:
    """samples/epoch_XXX.png: original | grayscale | colorized (deployed path) per fixed val photo."""
    rows = []
    for rgb in photos:
        rgb01 = env.put(rgb[None]).float() / 255.0
        with env.autocast():
            out = colorize_full(G, rgb01, cfg.work_size).float()
        rows.append((rgb01[0], report.grayscale(rgb01)[0], out[0]))
    if rows:
        report.comparison_grid(rows, path)


def evaluate(
    cfg: TrainConfig,
    split: Split,
    D: nn.Module,
    colorizers: dict[str, Colorizer],
    env: Env,
    console: Console,
) -> dict[str, Any]:
    """Calibrate the threshold on real validation photos, then score every colorizer's fakes."""
    spec = view_spec(cfg)
    paths = split.paths("val")
    D = unwrap(D).eval()
    if env.cuda:  # TF32 convs differ from the fp32 ONNX graph by ~1e-3: calibrate in full fp32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    real_scores = np.array([image_score(D, load_rgb(p, cfg.max_side), spec, env) for p in paths])
    threshold = threshold_for_fpr(real_scores, cfg.fpr)
    notes = []
    if threshold > 1.0:  # a real photo scored exactly 1.0: no probability threshold can spare it
        threshold = 1.0
        notes.append("a real validation photo scored 1.0; threshold capped at 1.0")
    rule = (
        f"score >= threshold means colorized; threshold = the smallest value that flags at most "
        f"{cfg.fpr:.2%} of the {len(paths)} real validation photos (view {spec.mode} "
        f"{spec.grid}x{spec.grid}, crop {spec.crop}, max_side {spec.max_side})"
    )
    # Colorizer metrics at the work size (long side), as colorization papers report them and
    # 16x cheaper than at 1024 px; the detector always sees full-size (<= max_side) fakes.
    small = [to_tensor(load_rgb(p, cfg.work_size)).float() / 255.0 for p in paths]
    detector, colorizer = {}, {}
    for name, fn in colorizers.items():
        t0 = time.time()
        fakes = (colorize_image(fn, load_rgb(p, cfg.max_side), env.device) for p in paths)
        fake_scores = [image_score(D, fake, spec, env) for fake in fakes]
        labels = np.r_[np.zeros(len(real_scores)), np.ones(len(fake_scores))]
        detector[name] = binary_report(labels, np.r_[real_scores, fake_scores], threshold)
        detector[name]["trained_on"] = name in cfg.sources("cls_sources")
        colorizer[name] = report.evaluate_colorizer(
            lambda rgb, fn=fn: fn(rgb.to(env.device)).cpu(), small
        )
        console.print(
            f"eval {name}: AUC {detector[name]['auc']:.3f}, flagged "
            f"{detector[name]['acc_fake']:.1%}, PSNR {colorizer[name]['psnr']:.2f}, "
            f"colourfulness {colorizer[name]['colorfulness']:.1f} ({time.time() - t0:.0f} s)"
        )
    return {
        "threshold": {
            "value": threshold,
            "rule": rule,
            "fpr_target": cfg.fpr,
            "n_real": len(paths),
            "real_flagged": float(np.mean(real_scores >= threshold)),
            "notes": notes,
        },
        "detector": detector,
        "colorizer": colorizer,
        "colorizer_metrics_long_side": cfg.work_size,
    }


def phase_summary(metrics_path: Path, cfg: TrainConfig) -> dict[str, dict[str, Any]]:
    """Per phase, from the epoch rows of metrics.jsonl (so it survives resumes): epochs, time,
    throughput and the last epoch's losses. In `cls`, img_s counts crops (real + colorized)."""
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    out: dict[str, dict[str, Any]] = {}
    for phase in PHASES:
        epochs = [r for r in rows if r.get("kind") == "epoch" and r["phase"] == phase]
        if not epochs:
            continue
        seconds = sum(r["epoch_s"] for r in epochs)
        summary = {"epochs": len(epochs), "seconds": seconds}
        summary["img_s"] = float(np.mean([r["img_s"] for r in epochs]))
        if phase == "cls":
            summary["photos_s"] = summary["img_s"] / (2 * cfg.cls_crops)
        last = epochs[-1]
        summary.update({k: v for k, v in last.items() if k.startswith(("loss", "acc", "val"))})
        out[phase] = summary
    return out


def view_spec(cfg: TrainConfig) -> ViewSpec:
    """The 0.1 PatchGAN detector's view (the forensic detector's is `detector_stage.detector_view`)."""
    return ViewSpec(
        mode="grid", max_side=cfg.max_side, crop=cfg.cls_crop, grid=cfg.view_grid, aggregate="mean"
    )


# --------------------------------------------------------------------------- the run


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not (enabled and console.is_interactive),
    )


def _start(cfg: TrainConfig, run: RunDir, env: Env, console: Console) -> tuple:
    """Fresh run: split, config.json; resume: the saved config, split and checkpoint."""
    if run.last.exists():
        if not cfg.resume:
            raise TrainError(
                f"{run.root} already holds a run: add --resume to continue it, or pick a new --out"
            )
        saved = TrainConfig.from_dict(load_json(run.config)["config"])
        for name in RUNTIME_FIELDS:
            setattr(saved, name, getattr(cfg, name))
        split = Split.from_dict(load_json(run.split))
        state = load_checkpoint(run.last)
        if env.main:
            console.print(
                f"resuming {run.root} at step {state['step']} with its saved config.json "
                f"(only --{', --'.join(RUNTIME_FIELDS[:-1])} may change on resume)"
            )
        return saved, split, state
    if env.main:
        if cfg.resume:
            console.print(f"nothing to resume in {run.root}: starting a new run")
        split = build_split(cfg.data, cfg.val_percent, cfg.max_images, cfg.max_side, cfg.workers)
        run.create()
        save_json(split.to_dict(), run.split)
        save_json({"config": cfg.to_dict(), "versions": versions()}, run.config)
        run.metrics.unlink(missing_ok=True)
    if env.world > 1:
        dist.barrier()
    return cfg, Split.from_dict(load_json(run.split)), None


def train(cfg: TrainConfig, console: Console | None = None) -> Path:
    """Run (or resume) a training run; returns the run folder. Raises TrainError for user errors."""
    cfg.validate()
    bad = [s for s in cfg.sources("cls_sources") if s in baselines.EVAL_ONLY]
    if bad:
        raise TrainError(f"--cls-sources {','.join(bad)}: evaluation-only colorizers (held out)")
    console = console or Console(stderr=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    env = setup_env(cfg.device)
    try:
        return _train(cfg, env, console)
    finally:
        if env.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, env: Env, console: Console) -> Path:
    """Setup, the phase loop, then (rank 0) evaluation and final.pt: the three parts below."""
    loop = _setup(cfg, env, console)
    with _progress(console, env.main) as progress:
        for p, phase in enumerate(PHASES):
            loop.run_phase(p, phase, progress)
    return _finish(loop, console)


@dataclass
class _Loop:
    """A run in progress: models, optimisers, where it is, and what it has kept so far.

    `position` is (phase, epoch, batch) of the next step; `snapshots` the generator states
    the later phases and the evaluation need (l1, gan_mid, gan). One checkpoint (`save`)
    holds all of it, so a resumed run continues exactly where it stopped.
    """

    cfg: TrainConfig
    env: Env
    run: RunDir
    split: Split
    gcfg: ColorizerConfig
    dcfg: DiscriminatorConfig
    G: nn.Module
    D: nn.Module
    opts: dict[str, torch.optim.Optimizer]
    state: dict[str, Any] | None
    metrics: MetricsLog | None
    say: Callable[..., None]
    position: tuple[int, int, int] = (0, 0, 0)
    step: int = 0
    snapshots: dict[str, Any] = field(default_factory=dict)
    val_images: torch.Tensor | None = None
    grid_photos: list[torch.Tensor] = field(default_factory=list)

    @functools.cached_property
    def train_paths(self) -> list[Path]:
        return self.split.paths("train")

    def fit_photos(self) -> list[torch.Tensor]:
        """The photos the baseline colorizers are fitted on (loaded once, when first needed)."""
        if not hasattr(self, "_fit_photos"):
            self._fit_photos = [
                to_tensor(load_rgb(p, self.cfg.work_size)).float() / 255.0
                for p in self.train_paths[:BASELINE_FIT_IMAGES]
            ]
        return self._fit_photos

    @functools.cached_property
    def bin_weights(self) -> torch.Tensor:
        # Rebalancing weights from the training photos alone: deterministic, so a resume agrees.
        return ab_prior_weights(self.fit_photos())

    def save(self, pos: tuple[int, int, int], sums: dict[str, Any]) -> None:
        """Checkpoint; `sums`: the running epoch's loss sums, so its epoch row survives a resume."""
        if not self.env.main or self.metrics is None:
            return
        save_torch(
            resume_state(
                pos,
                self.step,
                sums,
                cpu_state(self.G),
                cpu_state(self.D),
                self.opts,
                self.snapshots,
                self.metrics.offset(),
                self.cfg.to_dict(),
            ),
            self.run.last,
        )

    def log(self, row: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.log(row)

    def finish_phase(self, phase: str) -> None:
        if phase in ("l1", "gan"):
            self.snapshots[phase] = cpu_state(self.G)

    def loader(self, p: int, phase: str) -> tuple[DataLoader, EpochSampler]:
        cfg, env = self.cfg, self.env
        if phase == "cls":
            names = cfg.sources("cls_sources")
            sources = build_colorizers(names, self.snapshots, self.gcfg, cfg, self.fit_photos)
            self.say(f"classifier fakes from: {', '.join(sources)}")
            dataset: Any = ClassifierPairs(self.train_paths, sources, cfg, p)
        else:
            dataset = ColourCrops(
                self.train_paths, cfg.crop, cfg.work_size, cfg.max_side, cfg.seed, p
            )
        sampler = EpochSampler(len(dataset), env.world, env.rank, cfg.seed + p)
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=cfg.workers,
            pin_memory=env.cuda,
            worker_init_fn=worker_init,
            persistent_workers=False,
        )
        return loader, sampler

    def run_phase(self, p: int, phase: str, progress: Progress) -> None:
        """Every remaining epoch of one phase (none if the run is past it)."""
        n_epochs = self.cfg.epochs(phase)
        if p < self.position[0]:
            return
        if n_epochs == 0:
            self.finish_phase(phase)
            return
        loader, sampler = self.loader(p, phase)
        first_epoch = self.position[1] if p == self.position[0] else 0
        for epoch in range(first_epoch, n_epochs):
            skip = self.position[2] if (p, epoch) == self.position[:2] else 0
            sampler.set_epoch(epoch, skip * self.cfg.batch_size)
            self.run_epoch(p, phase, epoch, n_epochs, loader, skip, progress)
            if phase == "gan" and n_epochs >= 2 and epoch + 1 == n_epochs // 2:
                self.snapshots["gan_mid"] = cpu_state(self.G)
            if epoch + 1 == n_epochs:
                self.finish_phase(phase)
                self.position = (p + 1, 0, 0)
            else:
                self.position = (p, epoch + 1, 0)
            self.save(self.position, {})

    def train_step(self, phase: str, batch: torch.Tensor) -> tuple[dict[str, Any], int]:
        """One optimisation step of `phase`: its losses and how many images it saw."""
        cfg, env, opts = self.cfg, self.env, self.opts
        x = env.put(batch)
        if phase == "cls":
            return cls_step(self.D, opts["cls"], x, env), x.shape[0] * x.shape[1] * 2
        lab = rgb_to_lab_normalized(x.float() / 255.0)
        weights = self.bin_weights if cfg.g_head == "bins" else None
        if phase == "l1":
            return l1_step(self.G, opts["g"], lab, env, weights, cfg.g_loss), x.shape[0]
        return gan_step(self.G, self.D, opts["g"], opts["d"], lab, cfg, env, weights), x.shape[0]

    def run_epoch(
        self,
        p: int,
        phase: str,
        epoch: int,
        n_epochs: int,
        loader: DataLoader,
        skip: int,
        progress: Progress,
    ) -> None:
        cfg, env = self.cfg, self.env
        n_batches = skip + len(loader)
        task = progress.add_task(
            f"{phase} {epoch + 1}/{n_epochs}", total=n_batches, completed=skip, info=""
        )
        sums: dict[str, Any] = dict(self.state["epoch_sums"]) if skip and self.state else {}
        seen, t0 = 0, time.time()
        self.G.train()
        self.D.train()
        for b, batch in enumerate(loader, start=skip):
            out, n = self.train_step(phase, batch)
            seen += n
            self.step += 1
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + v
            if self.step % cfg.log_every == 0:
                vals = {k: v.item() for k, v in out.items()}
                rate = seen * env.world / (time.time() - t0)
                self.log({"phase": phase, "epoch": epoch, "step": self.step, **vals, "img_s": rate})
                info = " ".join(f"{k} {v:.4f}" for k, v in vals.items())
                progress.update(task, info=f"{info} {rate:.1f} img/s")
            progress.advance(task)
            if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and b + 1 < n_batches:
                self.save((p, epoch, b + 1), sums)
        progress.remove_task(task)
        elapsed = time.time() - t0
        rate = seen * env.world / max(elapsed, 1e-9)
        row = {k: float(v) / n_batches for k, v in sums.items()}
        row = {"phase": phase, "epoch": epoch, "step": self.step, **row}
        if phase != "cls" and env.main and self.val_images is not None:
            row["val_l1"] = val_l1(unwrap(self.G).eval(), self.val_images, env)
            done = epoch + 1 + (cfg.epochs_l1 if phase == "gan" else 0)
            write_grid(unwrap(self.G), self.grid_photos, self.run.sample_path(done), cfg, env)
        row.update({"img_s": rate, "epoch_s": elapsed, "kind": "epoch"})
        self.log(row)
        self.say(
            f"{phase} epoch {epoch + 1}/{n_epochs}  "
            + "  ".join(
                f"{k} {v:.4f}" for k, v in row.items() if k.startswith(("loss", "acc", "val"))
            )
            + f"  {rate:.1f} img/s  {elapsed:.0f} s"
        )


def _setup(cfg: TrainConfig, env: Env, console: Console) -> _Loop:
    """The run folder, the split, the networks and optimisers (resumed when there is a
    checkpoint), wrapped for DDP, and the fixed validation images."""
    run = RunDir(cfg.out)
    cfg, split, state = _start(cfg, run, env, console)
    say = console.print if env.main else (lambda *a, **k: None)
    counts = split.counts()
    if not split.train or not split.val:
        raise TrainError(
            f"{counts['train']} training and {counts['val']} validation photos: both splits "
            "need photos (the threshold is calibrated on validation); adjust --val-percent"
        )
    say(
        f"data: {counts['train']} train, {counts['val']} val photos; skipped "
        + ", ".join(f"{k} {counts[k]}" for k in counts if k not in ("train", "val"))
    )

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    gcfg = generator_config(cfg)
    dcfg = DiscriminatorConfig(cfg.d_base, cfg.d_layers)
    G: nn.Module = UNetColorizer(gcfg).to(env.device)
    D: nn.Module = PatchDiscriminator(dcfg).to(env.device)
    if env.cuda:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    adam = functools.partial(torch.optim.Adam, lr=cfg.lr, betas=(0.5, 0.999))
    opts = {"g": adam(G.parameters()), "d": adam(D.parameters()), "cls": adam(D.parameters())}
    loop_state: dict[str, Any] = {}
    if state is not None:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        for name, opt in opts.items():
            opt.load_state_dict(state["opts"][name])
        loop_state = {
            "position": tuple(state["position"]),
            "step": state["step"],
            "snapshots": state["snapshots"],
        }
        set_rng_state(state["rng"])
    if env.world > 1:
        ids = [env.device.index] if env.cuda else None
        G = DistributedDataParallel(G, device_ids=ids)
        D = DistributedDataParallel(D, device_ids=ids)
    metrics = (
        MetricsLog(run.metrics, state["metrics_offset"] if state else None) if env.main else None
    )
    loop = _Loop(cfg, env, run, split, gcfg, dcfg, G, D, opts, state, metrics, say, **loop_state)
    val_paths = split.paths("val")
    if env.main and val_paths:
        loop.val_images = torch.stack(
            [
                to_tensor(load_rgb(p, cfg.max_side).resize((cfg.work_size,) * 2, Image.BILINEAR))
                for p in val_paths[:VAL_LOSS_IMAGES]
            ]
        )
    if env.main:
        loop.grid_photos = [
            to_tensor(load_rgb(p, min(cfg.max_side, 512))) for p in val_paths[: cfg.samples]
        ]
    return loop


def _finish(loop: _Loop, console: Console) -> Path:
    """After the last phase: every rank leaves DDP; rank 0 evaluates, writes the report and
    final.pt, and runs the detector stage when the run uses the forensic detector."""
    cfg, env, run, split, say = loop.cfg, loop.env, loop.run, loop.split, loop.say
    G, D = unwrap(loop.G), unwrap(loop.D)
    if env.world > 1:
        # Every rank leaves the group together, before rank 0's long evaluation: a rank that
        # exits while the others still hold gloo's threads can abort the whole job.
        dist.barrier()
        dist.destroy_process_group()
    if not env.main:
        return run.root

    say("training done; calibrating and evaluating")
    names = cfg.sources("eval_sources")
    colorizers = build_colorizers(
        names, loop.snapshots, loop.gcfg, cfg, loop.fit_photos, env.device
    )
    t_eval = time.time()
    result = evaluate(cfg, split, D, colorizers, env, console)
    result = {
        "run": {
            "data_digest": split.data_digest,
            **{f"n_{k}": v for k, v in split.counts().items()},
            "steps": loop.step,
            "eval_s": time.time() - t_eval,
            "device": str(env.device),
            "world_size": env.world,
        },
        "phases": phase_summary(run.metrics, cfg),
        **result,
    }
    json_path, _ = report.write_report(run.root, result)
    spec = view_spec(cfg)
    final = {
        "format": 1,
        "generator": cpu_state(G),
        "generator_config": asdict(loop.gcfg),
        "generator_l1": loop.snapshots["l1"],
        "detector": cpu_state(D),
        "detector_config": asdict(loop.dcfg),
        "work_size": cfg.work_size,
        "threshold": result["threshold"]["value"],
        "threshold_rule": result["threshold"]["rule"],
        "view": spec.to_dict(),
        "data_digest": split.data_digest,
        "metrics": load_json(json_path),
        "version": imgcheck.__version__,
    }
    save_torch(final, run.final)
    if loop.metrics is not None:
        loop.metrics.close()
    say(f"wrote {run.final} and {json_path}")
    if cfg.g_head == "regression" and split.paths("val"):
        from imgcheck.trainer import decode

        say("colorizer: choosing the decode gain on the validation photos")
        decode.calibrate(run.root, say=say)
    if cfg.detector == "forensic":
        from imgcheck.trainer.detector_stage import run_stage

        say("detector stage: colorizer zoo, forensic head" + (", LOFO" if cfg.lofo else ""))
        onnx_files = [p for p in cfg.zoo_onnx.split(",") if p.strip()]
        run_stage(run.root, cfg.lofo, onnx_files, max(1, cfg.workers), say=say)
    return run.root
