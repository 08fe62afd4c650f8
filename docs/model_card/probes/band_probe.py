"""Probe: do extra band-limit features separate oracle_lowres (true chroma at a working size,
bilinear-stretched, JPEG q95 4:2:0) from real photos (same re-encode) better than the 42?
Per-size logistic head on view tiles, image = mean tile logit, 5-fold CV by photo.

Run from the repository root in the dev venv (round 2, stop 23; MODEL_CARD.md "`oracle_lowres`
by working size"): `SIZES=192,256,384 python docs/model_card/probes/band_probe.py`, then
`SIZES=96,128,512 ...`. PHOTOS (default ../shared/photos) holds train/ and extra/; features are
cached in CACHE (default /tmp) per size list."""

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from imgcheck.trainer.colour import rgb_to_lab
from imgcheck.trainer.data import is_val
from imgcheck.trainer.forensics import FEATURES, tile_features
from imgcheck.trainer.guided import box_valid, crop_border
from imgcheck.trainer.zoo._protocol import attach, down, lab_of, upsample_chroma, work_shape
from imgcheck.view import ViewSpec, make_views

torch.set_num_threads(2)
SPEC = ViewSpec(mode="tiles", max_side=512, crop=128)
PHOTOS = Path(os.environ.get("PHOTOS", "../shared/photos"))
roots = [PHOTOS / "train", PHOTOS / "extra"]
paths = sorted(p for r in roots for p in r.glob("*.jpg"))
val = [p for p in paths if is_val(hashlib.sha256(p.read_bytes()).hexdigest(), 20)]
print("val", len(val), flush=True)


def jpeg420(img):
    b = io.BytesIO()
    img.save(b, "JPEG", quality=95, subsampling=2)
    b.seek(0)
    return Image.open(b).convert("RGB")


def to_t(img):
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None].float() / 255


def to_img(t):
    return Image.fromarray((t[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).byte().numpy())


def extra_feats(rgb):
    lab = rgb_to_lab(rgb)
    L, ab = lab[:, :1] / 100, lab[:, 1:] / 100
    out = []
    # band energies: x - box1, box1 - box2, box2 - box4 (difference of boxes), each map
    # cropped to the centre that the widest window (radius 4) gives values for
    bands = []
    for x in (L, ab):
        b0 = crop_border(x, 4)
        b1, b2, b4 = (crop_border(box_valid(x, r), 4 - r) for r in (1, 2, 4))
        bands.append([b0 - b1, b1 - b2, b2 - b4])
    for k in range(3):
        eL = (bands[0][k] ** 2).mean((1, 2, 3))
        eA = (bands[1][k] ** 2).sum(1).mean((1, 2))
        out += [torch.log(eA + 1e-8), torch.log(eA + 1e-8) - torch.log(eL + 1e-7)]
    # local max over 16x16 windows of the fine-band chroma/luma ratio, and its 10th pct
    eL = F.avg_pool2d(bands[0][0] ** 2, 16)
    eA = F.avg_pool2d((bands[1][0] ** 2).sum(1, keepdim=True), 16)
    r = (torch.log(eA + 1e-8) - torch.log(eL + 1e-7)).flatten(1)
    torch.log(eL + 1e-7).flatten(1)
    out += [r.max(1).values, r.quantile(0.9, dim=1), r.quantile(0.1, dim=1)]
    # ratio where luma is textured: weight by luma band energy
    wgt = eL.flatten(1)
    out.append((r * wgt).sum(1) / (wgt.sum(1) + 1e-9))
    eA2 = F.avg_pool2d((bands[1][1] ** 2).sum(1, keepdim=True), 16)
    eL2 = F.avg_pool2d(bands[0][1] ** 2, 16)
    r2 = (torch.log(eA2 + 1e-8) - torch.log(eL2 + 1e-7)).flatten(1)
    out += [r2.max(1).values, r2.quantile(0.9, dim=1)]
    return torch.stack(out, 1)


def feats_of(img):
    crops, _ = make_views(img, SPEC)
    t = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        return torch.cat([tile_features(t), extra_feats(t)], 1).numpy()


sizes = tuple(int(s) for s in os.environ.get("SIZES", "192,256,384").split(","))
cache = Path(os.environ.get("CACHE", "/tmp")) / f"band_cache_{'_'.join(map(str, sizes))}.npz"

if cache.exists():
    D = dict(np.load(cache, allow_pickle=True))
    data = D["data"].item()
else:
    data = {"real": [], **{s: [] for s in sizes}}
    for i, p in enumerate(val):
        img = Image.open(p).convert("RGB")
        t = to_t(img)
        data["real"].append(feats_of(jpeg420(img)))
        lab = lab_of(t)
        for s in sizes:
            size = work_shape(*t.shape[-2:], s)
            small = down(lab, size)
            ab = upsample_chroma(small[:, 1:], small[:, :1], lab[:, :1], "bilinear")
            data[s].append(feats_of(jpeg420(to_img(attach(lab[:, :1], ab)))))
        if i % 25 == 0:
            print(i, flush=True)
    np.savez(cache, data=np.array(data, dtype=object))
NB = len(FEATURES)


def auc(pos, neg):
    pos, neg = np.asarray(pos), np.asarray(neg)
    return np.mean(pos[:, None] > neg[None]) + 0.5 * np.mean(pos[:, None] == neg[None])


def fit(Xt, yt, w, b):
    """L2-regularised logistic regression, in place."""
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(Xt @ w + b, yt) + 1e-3 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)


def cv(fake, cols, folds=5):
    n = len(fake)
    rng = np.random.default_rng(0)
    fold = rng.permutation(n) % folds
    sr, sf = np.zeros(n), np.zeros(n)
    for k in range(folds):
        tr = [i for i in range(n) if fold[i] != k]
        X = np.concatenate([data["real"][i][:, cols] for i in tr] + [fake[i][:, cols] for i in tr])
        y = np.concatenate(
            [np.zeros(len(data["real"][i])) for i in tr] + [np.ones(len(fake[i])) for i in tr]
        )
        mu, sd = X.mean(0), X.std(0) + 1e-6
        Xt = torch.tensor((X - mu) / sd, dtype=torch.float64)
        yt = torch.tensor(y, dtype=torch.float64)
        w = torch.zeros(Xt.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        fit(Xt, yt, w, b)
        for i in range(n):
            if fold[i] == k:
                for arr, s in ((data["real"][i], sr), (fake[i], sf)):
                    z = torch.tensor((arr[:, cols] - mu) / sd, dtype=torch.float64)
                    s[i] = float((z @ w.detach() + b.detach()).mean())
    return auc(sf, sr)


base = list(range(NB))
allc = list(range(data["real"][0].shape[1]))
names = [
    "bandE1",
    "bandR1",
    "bandE2",
    "bandR2",
    "bandE3",
    "bandR3",
    "r1max",
    "r1q90",
    "r1q10",
    "r1wmean",
    "r2max",
    "r2q90",
]
for s in sizes:
    fake = data[s]
    single = {
        nm: auc([f[:, NB + j].mean() for f in fake], [r[:, NB + j].mean() for r in data["real"]])
        for j, nm in enumerate(names)
    }
    print(
        s,
        "base",
        round(cv(fake, base), 3),
        "all",
        round(cv(fake, allc), 3),
        "bands",
        round(cv(fake, base + list(range(NB, NB + 6))), 3),
        "local",
        round(cv(fake, base + list(range(NB + 6, NB + 12))), 3),
        flush=True,
    )
    print(
        "  single-feature image-mean AUC", {k: round(v, 3) for k, v in single.items()}, flush=True
    )
