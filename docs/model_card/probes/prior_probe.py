"""Probe: does agreement between an image's chroma and our colorizer's guess from its L
separate colour-change families (oracle_tone, tint) from real photos? 256-px images.

`python docs/model_card/probes/prior_probe.py` from the repository root in the dev venv (round
2, stop 23; MODEL_CARD.md "A colour prior from our colorizer"); PHOTOS as in band_probe.py."""

import hashlib
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

from imgcheck.trainer.data import is_val
from imgcheck.trainer.zoo import ZooContext, families
from imgcheck.trainer.zoo._protocol import lab_of

torch.set_num_threads(2)
PHOTOS = Path(os.environ.get("PHOTOS", "../shared/photos"))
roots = [PHOTOS / "train", PHOTOS / "extra"]
paths = sorted(p for r in roots for p in r.glob("*.jpg"))
sp = [(p, is_val(hashlib.sha256(p.read_bytes()).hexdigest(), 20)) for p in paths]


def load(p):
    im = Image.open(p).convert("RGB")
    im.thumbnail((256, 256), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255


train = [load(p) for p, v in sp if not v][:80]
val = [load(p) for p, v in sp if v]
ctx = ZooContext(photos=train)
fams = {
    n: families()[n].build(ctx)
    for n in ("tint", "oracle_tone", "oracle_lowres", "lut", "exemplar", "knn")
}
sess = ort.InferenceSession("detector/models/colorizer.onnx")


def pred_ab(rgb):
    u8 = (rgb.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)[None]
    out = sess.run(None, {"image": u8})[0][0]
    return lab_of(torch.from_numpy(out.astype(np.float32) / 255).permute(2, 0, 1)[None])[0, 1:]


def feats(rgb, ab_p):
    ab = lab_of(rgb[None])[0, 1:]
    dot = (ab * ab_p).sum()
    na, npred = ab.pow(2).sum().sqrt(), ab_p.pow(2).sum().sqrt()
    cos = float(dot / (na * npred + 1e-6))
    # per-pixel hue agreement weighted by both chromas
    w = ab.norm(dim=0) * ab_p.norm(dim=0)
    c = (ab * ab_p).sum(0) / (ab.norm(dim=0) * ab_p.norm(dim=0) + 1e-6)
    pix = float((w * c).sum() / (w.sum() + 1e-6))
    g = max(0.0, float(dot / (npred**2 + 1e-6)))
    resid = float((ab - g * ab_p).pow(2).sum() / (na**2 + 1e-6))
    return [cos, pix, resid]


def auc(pos, neg):
    pos, neg = np.asarray(pos), np.asarray(neg)
    return float(np.mean(pos[:, None] > neg[None]) + 0.5 * np.mean(pos[:, None] == neg[None]))


rng = np.random.default_rng(0)
real = [feats(v, pred_ab(v)) for v in val]
print("real cos mean", np.mean([r[0] for r in real]))
for name, f in fams.items():
    fake = []
    for v in val:
        out = f(v[None], rng)[0].clamp(0, 1)
        # the colorizer sees only L: its guess is the same for real and fake of one photo
        fake.append(feats(out, pred_ab(out)))
    print(
        name,
        f"AUC real>fake: cos {auc([r[0] for r in real], [x[0] for x in fake]):.3f} pix {auc([r[1] for r in real], [x[1] for x in fake]):.3f}  resid fake>real {auc([x[2] for x in fake], [r[2] for r in real]):.3f}",
        flush=True,
    )
