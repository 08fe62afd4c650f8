"""Non-GAN colorizers: extra fakes for training, and unseen families for a fair evaluation.

A detector trained only on the shipped GAN colorizer may learn that one network's fingerprint
instead of "this chroma was invented from luminance". So:

- `TRAINING` colorizers (`LuminanceLUTColorizer`, a statistical look-up table) add a second,
  very different kind of fake to the classifier's training data.
- `EVAL_ONLY` colorizers are never used in training. Scoring the detector on their outputs is a
  leave-one-family-out test: does it catch colorizers it has never seen?
  * `ExemplarTransferColorizer`: Welsh, Ashikhmin & Mueller (2002), "Transferring color to
    greyscale images": reference-based transfer by luminance + neighbourhood statistics.
  * `KNNPatchColorizer`: non-parametric k-nearest-neighbour regression from small L patches
    to ab (a learning-based family, but with no network and no training loss).

All of them follow the deployed colorizer's protocol (`pipeline.colorize_full`): grey the input
to CIELAB L at full resolution, predict ab on a `work_size` x `work_size` resize of L, upsample
ab bilinearly and re-attach it to the full-resolution L. So they differ from the shipped
colorizer only in *how ab is guessed*, which is what a generalisation test should vary.

Each colorizer is a callable `(rgb: Tensor[N, 3, H, W] in [0, 1]) -> Tensor[N, 3, H, W]`.
Use `build_baseline(name, photos)` to get a ready (fitted) one by registry name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch.nn import functional as F

from imgcheck.trainer.colour import lab_to_rgb, rgb_to_lab, rgb_to_luminance

__all__ = [
    "EVAL_ONLY",
    "TRAINING",
    "ExemplarTransferColorizer",
    "KNNPatchColorizer",
    "LuminanceLUTColorizer",
    "WorkResolutionChroma",
    "build_baseline",
]

Colorizer = Callable[[torch.Tensor], torch.Tensor]


# ------------------------------------------------------------------------------- shared steps


def _as_batch(rgb: torch.Tensor) -> torch.Tensor:
    if rgb.dim() == 3:
        rgb = rgb.unsqueeze(0)
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected RGB (N, 3, H, W) or (3, H, W), got {tuple(rgb.shape)}")
    return rgb.float()


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """The same antialiased resize `colorize_full` applies to L before the generator."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def _reattach(L_full: torch.Tensor, ab_small: torch.Tensor) -> torch.Tensor:
    """Upsample work-resolution ab and re-attach it to full-resolution L, like `colorize_full`."""
    ab = F.interpolate(ab_small, size=L_full.shape[-2:], mode="bilinear", align_corners=False)
    return lab_to_rgb(torch.cat([L_full, ab], dim=1))


def _local_std(L: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Standard deviation of L in a k x k neighbourhood (N, 1, H, W): a cheap texture measure."""
    pad = k // 2
    mean = F.avg_pool2d(L, k, stride=1, padding=pad, count_include_pad=False)
    sq = F.avg_pool2d(L * L, k, stride=1, padding=pad, count_include_pad=False)
    return (sq - mean * mean).clamp_min(0.0).sqrt()


def _row_position(n: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """Relative vertical position in [0, 1] (N, 1, H, W): skies are up, grass is down."""
    y = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    return y.view(1, 1, h, 1).expand(n, 1, h, w)


def _iter_batches(images: Iterable[torch.Tensor]) -> Iterable[torch.Tensor]:
    for item in images:
        yield _as_batch(item)


# ---------------------------------------------------------------------- training: look-up table


class LuminanceLUTColorizer:
    """Mean ab per (L, local texture, vertical position) cell, learnt from colour photos.

    The simplest data-driven colorizer: a histogram regression with no spatial reasoning, so its
    fakes have "plausible on average" chroma (warm skin-like mid-tones, blue-ish bright tops,
    green-ish textured bottoms) with none of a CNN's artefacts. Cells with fewer than
    `min_count` training pixels fall back to the (L, texture) marginal, then to L alone, then
    to neutral grey. Along L the table is interpolated linearly between bin centres, so ab has
    no steps at bin edges. `chroma_gain` scales the predicted ab (averaging desaturates; > 1
    gives bolder fakes).
    """

    TEXTURE_EDGES = (2.0, 6.0, 14.0)  # local 5x5 std of L (0-100 scale) at work resolution

    def __init__(
        self,
        work_size: int = 256,
        l_bins: int = 24,
        row_bins: int = 3,
        min_count: int = 50,
        chroma_gain: float = 1.0,
    ) -> None:
        self.work_size = work_size
        self.l_bins = l_bins
        self.t_bins = len(self.TEXTURE_EDGES) + 1
        self.row_bins = row_bins
        self.min_count = min_count
        self.chroma_gain = chroma_gain
        self.table: torch.Tensor | None = None  # (l_bins, t_bins, row_bins, 2) mean ab

    def _cells(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(texture bin, row bin) per pixel of a work-resolution L batch (N, 1, H, W)."""
        edges = torch.tensor(self.TEXTURE_EDGES, device=L.device)
        t = torch.bucketize(_local_std(L).contiguous(), edges)
        n, _, h, w = L.shape
        r = (_row_position(n, h, w, L.device) * self.row_bins).long().clamp_max(self.row_bins - 1)
        return t, r

    def fit(self, images: Iterable[torch.Tensor]) -> LuminanceLUTColorizer:
        """Accumulate ab sums per cell over colour photos ((3, H, W) or (N, 3, H, W) in [0, 1])."""
        cells = self.l_bins * self.t_bins * self.row_bins
        sums = torch.zeros(cells, 2, dtype=torch.float64)
        counts = torch.zeros(cells, dtype=torch.float64)
        for batch in _iter_batches(images):
            lab = rgb_to_lab(_resize(batch, self.work_size))
            L = lab[:, :1]
            lbin = (L / 100.0 * self.l_bins).long().clamp(0, self.l_bins - 1)
            t, r = self._cells(L)
            idx = ((lbin * self.t_bins + t) * self.row_bins + r).flatten().cpu()
            ab = lab[:, 1:].permute(1, 0, 2, 3).reshape(2, -1).double().cpu()
            counts += torch.bincount(idx, minlength=cells).double()
            for c in range(2):
                sums[:, c] += torch.bincount(idx, weights=ab[c], minlength=cells)
        if counts.sum() == 0:
            raise ValueError("LuminanceLUTColorizer.fit got no pixels")
        shape = (self.l_bins, self.t_bins, self.row_bins)
        sums, counts = sums.view(*shape, 2), counts.view(*shape)
        # Fallback hierarchy: (L, T, row) -> (L, T) -> (L) -> neutral.
        lt_sum, lt_cnt = sums.sum(2), counts.sum(2)
        l_sum, l_cnt = lt_sum.sum(1), lt_cnt.sum(1)
        l_mean = torch.where(l_cnt[:, None] > 0, l_sum / l_cnt.clamp_min(1)[:, None], 0.0)
        lt_mean = torch.where(
            lt_cnt[..., None] >= self.min_count,
            lt_sum / lt_cnt.clamp_min(1)[..., None],
            l_mean[:, None, :],
        )
        full = torch.where(
            counts[..., None] >= self.min_count,
            sums / counts.clamp_min(1)[..., None],
            lt_mean[:, :, None, :],
        )
        self.table = full.float()
        return self

    @torch.no_grad()
    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.table is None:
            raise RuntimeError("LuminanceLUTColorizer: call fit() with colour photos first")
        rgb = _as_batch(rgb)
        L_full = rgb_to_luminance(rgb)
        L = _resize(L_full, self.work_size)
        t, r = self._cells(L)
        table = self.table.to(L.device)
        pos = (L / 100.0 * self.l_bins - 0.5).clamp(0, self.l_bins - 1)
        l0 = pos.floor().long().clamp_max(self.l_bins - 2) if self.l_bins > 1 else pos.long()
        l1 = (l0 + 1).clamp_max(self.l_bins - 1)
        w = (pos - l0).unsqueeze(-1)
        ab = (1 - w) * table[l0, t, r] + w * table[l1, t, r]  # (N, 1, H, W, 2)
        ab = ab[:, 0].permute(0, 3, 1, 2) * self.chroma_gain
        return _reattach(L_full, ab)


# --------------------------------------------------------------- eval only: exemplar transfer


class ExemplarTransferColorizer:
    """Welsh, Ashikhmin & Mueller (2002) global colour transfer from reference colour photos.

    Per target image: pick the reference whose L histogram is closest (L1 over 16 bins; Welsh
    et al. let a user pick a similar photo), remap the reference's L to the target's mean and
    standard deviation, take `samples` jittered-grid samples from it (Welsh et al. used ~200),
    and give every target pixel the ab of the sample that best matches it in
    0.5 * luminance + 0.5 * 5x5-neighbourhood standard deviation (squared differences).
    Nothing is learnt, so this family shares no artefact with any trained colorizer.
    """

    def __init__(
        self,
        references: Sequence[torch.Tensor],
        work_size: int = 256,
        samples: int = 200,
        seed: int = 0,
    ) -> None:
        refs = [_as_batch(r) for r in references]
        if not refs:
            raise ValueError("ExemplarTransferColorizer needs at least one reference colour photo")
        self.work_size = work_size
        self.samples = samples
        self.seed = seed
        self._refs: list[dict[str, torch.Tensor]] = []
        for batch in refs:
            for img in batch:
                lab = rgb_to_lab(_resize(img[None], work_size))
                L = lab[:, :1]
                self._refs.append(
                    {
                        "L": L[0, 0],
                        "std": _local_std(L)[0, 0],
                        "ab": lab[0, 1:],
                        "hist": self._hist(L),
                    }
                )

    @staticmethod
    def _hist(L: torch.Tensor) -> torch.Tensor:
        return torch.histc(L.float().flatten().cpu(), bins=16, min=0.0, max=100.0) / L.numel()

    def _jittered_grid(self, h: int, w: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        side = max(1, round(math.sqrt(self.samples)))
        cy = torch.arange(side).repeat_interleave(side) + torch.rand(side * side, generator=gen)
        cx = torch.arange(side).repeat(side) + torch.rand(side * side, generator=gen)
        ys = (cy / side * h).long().clamp_max(h - 1)
        xs = (cx / side * w).long().clamp_max(w - 1)
        return ys, xs

    @torch.no_grad()
    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        rgb = _as_batch(rgb)
        L_full = rgb_to_luminance(rgb)
        L = _resize(L_full, self.work_size)
        std = _local_std(L)
        out = []
        for i in range(L.shape[0]):
            # Re-seeded per image, so an image's colours do not depend on its batch neighbours.
            gen = torch.Generator().manual_seed(self.seed)
            Lt, st = L[i, 0], std[i, 0]
            hist = self._hist(Lt)
            ref = min(self._refs, key=lambda r: float((r["hist"] - hist).abs().sum()))
            mu_t, sd_t = Lt.mean(), Lt.std()
            mu_r, sd_r = ref["L"].mean(), ref["L"].std()
            scale = sd_t / sd_r.clamp_min(1e-3)
            ys, xs = self._jittered_grid(*ref["L"].shape, gen)
            s_l = ((ref["L"][ys, xs] - mu_r) * scale + mu_t).to(Lt.device)
            s_std = (ref["std"][ys, xs] * scale).to(Lt.device)
            s_ab = ref["ab"][:, ys, xs].to(Lt.device)  # (2, S)
            d = 0.5 * (Lt.reshape(-1, 1) - s_l) ** 2 + 0.5 * (st.reshape(-1, 1) - s_std) ** 2
            best = d.argmin(dim=1)
            out.append(s_ab[:, best].view(2, *Lt.shape))
        return _reattach(L_full, torch.stack(out))


# ------------------------------------------------------------- eval only: k-NN patch regression


class KNNPatchColorizer:
    """k-nearest-neighbour regression from L patches to ab, fitted on colour photos.

    Features per pixel (at work resolution): the 5x5 L patch, the mean L of a 17x17 context
    window and the relative row, standardised and projected on their first `dims` principal
    components. `fit` keeps a bank of `bank_size` random training pixels; prediction averages
    the ab of the `k` nearest bank entries, weighted by inverse distance. Exact brute-force
    search, chunked so a 256x256 work image needs a few hundred MB at most.
    """

    def __init__(
        self,
        work_size: int = 256,
        k: int = 8,
        bank_size: int = 4096,
        dims: int = 12,
        samples_per_image: int = 1024,
        seed: int = 0,
    ) -> None:
        self.work_size = work_size
        self.k = k
        self.bank_size = bank_size
        self.dims = dims
        self.samples_per_image = samples_per_image
        self.seed = seed
        self.mean: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None
        self.proj: torch.Tensor | None = None
        self.bank: torch.Tensor | None = None  # (B, dims)
        self.bank_ab: torch.Tensor | None = None  # (B, 2)

    @staticmethod
    def _features(L: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) L -> (N, H*W, 27) raw features."""
        n, _, h, w = L.shape
        x = L / 100.0
        patch = F.unfold(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5)  # (N, 25, H*W)
        ctx = F.avg_pool2d(x, 17, stride=1, padding=8, count_include_pad=False)
        row = _row_position(n, h, w, L.device)
        extra = torch.cat([ctx, row], dim=1).flatten(2)  # (N, 2, H*W)
        return torch.cat([patch, extra], dim=1).transpose(1, 2)

    def fit(self, images: Iterable[torch.Tensor]) -> KNNPatchColorizer:
        gen = torch.Generator().manual_seed(self.seed)
        feats, abs_ = [], []
        for batch in _iter_batches(images):
            lab = rgb_to_lab(_resize(batch, self.work_size))
            f = self._features(lab[:, :1]).reshape(-1, 27).cpu()
            ab = lab[:, 1:].permute(0, 2, 3, 1).reshape(-1, 2).cpu()
            take = torch.randperm(f.shape[0], generator=gen)[
                : self.samples_per_image * batch.shape[0]
            ]
            feats.append(f[take])
            abs_.append(ab[take])
        if not feats:
            raise ValueError("KNNPatchColorizer.fit got no images")
        f, ab = torch.cat(feats), torch.cat(abs_)
        if f.shape[0] > self.bank_size:
            keep = torch.randperm(f.shape[0], generator=gen)[: self.bank_size]
            f, ab = f[keep], ab[keep]
        self.mean = f.mean(0)
        self.scale = f.std(0).clamp_min(1e-4)
        z = (f - self.mean) / self.scale
        _, _, vt = torch.linalg.svd(z, full_matrices=False)
        self.proj = vt[: min(self.dims, vt.shape[0])].T.contiguous()  # (27, dims)
        self.bank = z @ self.proj
        self.bank_ab = ab
        return self

    @torch.no_grad()
    def __call__(self, rgb: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        if self.bank is None:
            raise RuntimeError("KNNPatchColorizer: call fit() with colour photos first")
        rgb = _as_batch(rgb)
        L_full = rgb_to_luminance(rgb)
        L = _resize(L_full, self.work_size)
        n, _, h, w = L.shape
        dev = L.device
        mean, scale, proj = self.mean.to(dev), self.scale.to(dev), self.proj.to(dev)
        bank, bank_ab = self.bank.to(dev), self.bank_ab.to(dev)
        k = min(self.k, bank.shape[0])
        q = ((self._features(L) - mean) / scale) @ proj  # (N, HW, dims)
        q = q.reshape(-1, proj.shape[1])
        out = torch.empty(q.shape[0], 2, device=dev)
        for s in range(0, q.shape[0], chunk):
            d, idx = torch.cdist(q[s : s + chunk], bank).topk(k, dim=1, largest=False)
            wts = 1.0 / (d + 1e-3)
            out[s : s + chunk] = (bank_ab[idx] * wts[..., None]).sum(1) / wts.sum(1, keepdim=True)
        ab = out.view(n, h, w, 2).permute(0, 3, 1, 2)
        return _reattach(L_full, ab)


# ---------------------------------------------------------------------------------- registry


class WorkResolutionChroma:
    """The photo's own chroma, reduced to `work_size` and re-attached to full-resolution L.

    An "oracle" colorizer: perfect hues, but exactly the chroma resolution every colorizer
    following the deployed protocol produces (ours, DeOldify-style renderers, our baselines).
    Training the detector on it teaches the one cue all of them share, chroma that is smoother
    than its luminance, instead of our generator's hue habits (its sepia bias), which is what
    a detector trained on GAN fakes alone learns first. Training only: it needs the colour
    original, so it is never an evaluation colorizer.
    """

    def __init__(self, work_size: int = 256) -> None:
        self.work_size = work_size

    @torch.no_grad()
    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        lab = rgb_to_lab(_as_batch(rgb))
        return _reattach(lab[:, :1], _resize(lab[:, 1:], self.work_size))


# Names used by the trainer (which fakes it trains on) and by the model card (what it was
# evaluated on). Never add an EVAL_ONLY name to TRAINING: that would void the held-out test.
TRAINING: dict[str, type] = {"lut": LuminanceLUTColorizer, "chroma_lowres": WorkResolutionChroma}
EVAL_ONLY: dict[str, type] = {
    "exemplar": ExemplarTransferColorizer,
    "knn": KNNPatchColorizer,
}


def build_baseline(
    name: str, photos: Sequence[torch.Tensor], work_size: int = 256, seed: int = 0
) -> Colorizer:
    """A ready colorizer by registry name, fitted on (or, for "exemplar", referencing) `photos`.

    `photos` must be training-split colour photos ((3, H, W) or (N, 3, H, W) in [0, 1]), never
    the images the colorizer will be evaluated on. "exemplar" uses up to 8 of them as references.
    """
    if name == "lut":
        return LuminanceLUTColorizer(work_size=work_size).fit(photos)
    if name == "chroma_lowres":
        return WorkResolutionChroma(work_size=work_size)
    if name == "knn":
        return KNNPatchColorizer(work_size=work_size, seed=seed).fit(photos)
    if name == "exemplar":
        gen = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(photos), generator=gen)[:8].tolist()
        return ExemplarTransferColorizer([photos[i] for i in pick], work_size=work_size, seed=seed)
    raise KeyError(f"unknown baseline colorizer {name!r}; known: {sorted(TRAINING | EVAL_ONLY)}")
