"""Rebuild a run folder around a shipped colorizer, so the detector can be retrained alone.

The detector stage (`trainer.detector_stage`) needs a run folder: the config, the content-hash
split, and the generator snapshots its zoo colorizes with (`ours_pre` is the pre-training
snapshot, the shipped colorizer's weights). Run folders do not outlive the machine they were
trained on, and pre-training the colorizer again takes CPU hours and would change the shipped
colorizer. So this reads the generator's weights back from `colorizer.onnx` and writes a run
folder whose checkpoint stands at the start of the GAN phase:

    python -m imgcheck.trainer.rebuild --models detector/models \\
        --config docs/model_card/config.json --data DATA --out runs/NAME
    imgcheck train --data DATA --out runs/NAME --resume     # GAN, report, decode, detector stage

The exported graph keeps every convolution's weights as initializers named after the module
(`generator.<key>`); each GroupNorm is exported as Reshape -> InstanceNormalization -> Reshape
followed by a Mul (its weight) and an Add (its bias), whose constants are read from there. The
rebuilt network is checked against the graph on a photo before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from imgcheck.session import ModelError
from imgcheck.trainer.config import TrainConfig, TrainError
from imgcheck.trainer.data import build_split, load_rgb, to_tensor
from imgcheck.trainer.nets import (
    DiscriminatorConfig,
    PatchDiscriminator,
    UNetColorizer,
    generator_config,
)
from imgcheck.trainer.runs import RunDir, load_json, resume_state, save_json, save_torch, versions

PREFIX = "generator."
PARITY_LEVELS = 1.0  # most |ONNX - rebuilt| on the check photo, in levels of 255
CHECK_SIDE = 256


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _norm_affine(
    conv_out: str, consumers: dict[str, list[onnx.NodeProto]], values: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Follow a conv's output through the exported GroupNorm to its Mul (weight) and Add (bias)."""
    x, weight = conv_out, None
    for _ in range(8):
        nxt = [n for n in consumers.get(x, []) if n.op_type != "Shape"]
        if len(nxt) != 1:
            break
        node = nxt[0]
        if node.op_type in ("Mul", "Add"):
            other = [i for i in node.input if i != x]
            if len(other) != 1 or other[0] not in values:
                break
            if node.op_type == "Mul" and weight is None:
                weight = values[other[0]]
            elif node.op_type == "Add" and weight is not None:
                return weight, values[other[0]]
        x = node.output[0]
    raise TrainError(f"no GroupNorm scale and shift after {conv_out}: not an imgcheck colorizer")


def generator_state(model: onnx.ModelProto, template: UNetColorizer) -> dict[str, torch.Tensor]:
    """The generator's state dict, read from its exported colorizer graph.

    `template` gives the keys and shapes (build it with the run's generator config); every key
    must be found, with its shape, or TrainError says which is missing."""
    values = _constants(model)
    consumers = _consumers(model)
    convs = {n.input[1]: n for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 1}
    state: dict[str, torch.Tensor] = {}
    for key, like in template.state_dict().items():
        name = PREFIX + key
        if name in values:
            array = values[name]
        else:
            # GroupNorm `X.body.<i>.weight|bias` follows the conv `X.body.<i-1>.weight`.
            module, index, leaf = key.rsplit(".", 2)
            conv = (
                convs.get(f"{PREFIX}{module}.{int(index) - 1}.weight") if index.isdigit() else None
            )
            if conv is None or leaf not in ("weight", "bias"):
                raise TrainError(f"colorizer graph has no value for {key}: another architecture?")
            weight, bias = _norm_affine(conv.output[0], consumers, values)
            array = weight if leaf == "weight" else bias
        if array.size != like.numel():
            raise TrainError(
                f"colorizer graph's {key} has {array.size} values, the config's network "
                f"{like.numel()}: the config does not match the model"
            )
        state[key] = torch.from_numpy(np.array(array, dtype=np.float32)).reshape(like.shape)
    return state


def decode_gain(model: onnx.ModelProto) -> float:
    """The regression head's decode gain baked into the graph: the constant after its Tanh."""
    values = _constants(model)
    consumers = _consumers(model)
    for node in model.graph.node:
        if node.op_type != "Tanh":
            continue
        for mul in consumers.get(node.output[0], []):
            other = [i for i in mul.input if i != node.output[0]]
            if mul.op_type == "Mul" and len(other) == 1 and other[0] in values:
                return float(np.asarray(values[other[0]]).reshape(-1)[0])
    raise TrainError("colorizer graph has no Tanh -> Mul decode: not a regression-head colorizer")


def check_parity(generator: UNetColorizer, onnx_path: Path, photo: Path, work_size: int) -> float:
    """Max |ONNX - rebuilt| (levels of 255) colorizing `photo` greyed: 0.5 is rounding."""
    from imgcheck.session import Device, create_session
    from imgcheck.trainer.pipeline import colorize_full

    grey = load_rgb(photo, CHECK_SIDE).convert("L").convert("RGB")
    u8 = np.asarray(grey, dtype=np.uint8)[None]
    session = create_session(onnx_path, Device.CPU)
    (ref,) = session.run(["colorized"], {"image": u8})
    with torch.no_grad():
        out = colorize_full(generator.eval(), to_tensor(grey)[None].float() / 255.0, work_size)
    mine = out[0].permute(1, 2, 0).numpy() * 255.0
    return float(np.abs(ref[0].astype(np.float32) - mine).max())


def rebuild(
    models: Path,
    config_json: Path,
    data: Path,
    out: Path,
    workers: int = 2,
    say: Callable[[str], Any] = print,
) -> Path:
    """Write RUN = `out`: config.json (`config_json`'s, data and out replaced), split.json,
    checkpoints/last.pt at the start of the GAN phase with the colorizer's weights as the
    pre-training snapshot; `imgcheck train --resume` continues from there."""
    run = RunDir(out)
    if run.root.exists() and any(run.root.iterdir()):
        raise TrainError(f"{run.root} exists and is not empty: pick a new --out")
    manifest = load_json(Path(models) / "manifest.json")
    onnx_path = Path(models) / manifest["colorizer"]["file"]
    saved = load_json(Path(config_json))
    cfg = TrainConfig.from_dict({**saved.get("config", saved), "data": str(data), "out": str(out)})
    cfg.resume = False
    cfg.validate()
    work_size = int(manifest["colorizer"].get("work_size", cfg.work_size))
    if work_size != cfg.work_size:
        raise TrainError(f"the colorizer works at {work_size} px, the config at {cfg.work_size}")
    if cfg.g_head != "regression":
        raise TrainError("only a regression-head colorizer can be read back (its decode is a gain)")
    model = onnx.load(str(onnx_path))
    gcfg = generator_config(cfg)
    state = generator_state(model, UNetColorizer(gcfg))
    gain = decode_gain(model)
    check = UNetColorizer(replace(gcfg, gain=gain))
    check.load_state_dict(state)
    split = build_split(cfg.data, cfg.val_percent, cfg.max_images, cfg.max_side, workers)
    if not split.val:
        raise TrainError(f"{data}: no validation photos to check the rebuilt colorizer on")
    diff = check_parity(check, onnx_path, Path(split.paths("val")[0]), cfg.work_size)
    say(f"rebuilt the colorizer from {onnx_path} (decode gain {gain:g}): max |ONNX - torch| "
        f"{diff:.3f} of 255")  # fmt: skip
    if diff > PARITY_LEVELS:
        raise TrainError(f"the rebuilt colorizer differs from {onnx_path} by {diff:.2f} of 255")

    torch.manual_seed(cfg.seed)
    G = UNetColorizer(gcfg)
    G.load_state_dict(state)
    D = PatchDiscriminator(DiscriminatorConfig(cfg.d_base, cfg.d_layers))
    adam = lambda params: torch.optim.Adam(params, lr=cfg.lr, betas=(0.5, 0.999))  # noqa: E731
    opts = {"g": adam(G.parameters()), "d": adam(D.parameters()), "cls": adam(D.parameters())}
    run.create()
    save_json({"config": cfg.to_dict(), "versions": versions()}, run.config)
    save_json(split.to_dict(), run.split)
    run.metrics.write_text("", encoding="utf-8")
    snapshots = {"l1": {k: v.clone() for k, v in state.items()}}
    # (1, 0, 0): the GAN phase's first step (`config.PHASES`); nothing logged yet.
    checkpoint = resume_state(
        (1, 0, 0), 0, {}, G.state_dict(), D.state_dict(), opts, snapshots, 0, cfg.to_dict()
    )
    save_torch(checkpoint, run.last)
    counts = split.counts()
    say(f"wrote {run.root}: {counts['train']} train, {counts['val']} val photos; next: "
        f"imgcheck train --data {data} --out {run.root} --resume")  # fmt: skip
    return run.root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m imgcheck.trainer.rebuild",
        description="Rebuild a run folder around a shipped colorizer.onnx (no colorizer retrain).",
    )
    parser.add_argument("--models", type=Path, required=True, help="folder with manifest.json")
    parser.add_argument("--config", type=Path, required=True, help="a run's config.json")
    parser.add_argument("--data", type=Path, required=True, help="the photo folder")
    parser.add_argument("--out", type=Path, required=True, help="the new run folder")
    parser.add_argument("--workers", type=int, default=2, help="processes for the split scan")
    args = parser.parse_args(argv)
    try:
        rebuild(args.models, args.config, args.data, args.out, args.workers)
    except (TrainError, ModelError, OSError, KeyError, ValueError) as err:
        print(f"imgcheck rebuild: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
