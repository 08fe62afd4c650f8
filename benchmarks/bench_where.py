"""Where a scan's CPU goes, below `bench_cascade.py --where`: per tile, per op type, per decode step.

Issue 12 asks RESULTS.md to say where the remaining time goes. `bench_cascade.py --where` splits
a scan into decoding and the detector call; this goes one level down, on the same corpus:

  - the detector graph per tile by run size (the scan runs at most 8 tiles per single-threaded
    run): flat per tile means the cost is the tiles' pixels, not a per-call overhead;
  - the graph's time by ONNX op type (ONNX Runtime's own profiler, one thread);
  - the decode side of a scan (`scanning.prepare`: draft decode, view resize, grey check), by
    the C calls that take it (cProfile, one thread);
  - how many tiles a real photo needs under the shipped cascade, with the tiles in scan order
    (`cascade.tile_order`) and, for comparison, the most textured / colourful tiles first.

    python benchmarks/bench_where.py [--n 200] [--model DIR] [--photos DIR]

Every ratio comes from one process; absolute numbers move with the machine.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _corpus

RUN_SIZES = (1, 2, 4, 8, 16)


def tiles_of(paths: list[Path], spec: Any) -> list[np.ndarray]:
    """Each image's view tiles, as scan cuts them (`scanning.prepare`)."""
    from imgcheck.inputs import InputItem
    from imgcheck.scanning import prepare

    out = []
    for p in paths:
        got = prepare(InputItem(str(p)), spec)
        if got.crops is not None and len(got.crops):
            out.append(got.crops)
    return out


def per_run_size(model: Path, tiles: np.ndarray, rounds: int) -> dict[int, float]:
    """ms per tile of one single-threaded session for each run size: the sizes interleaved
    within each round, so a machine's drift hits them alike; median of the rounds."""
    from imgcheck.session import Device, create_session

    sess = create_session(model, Device.CPU, 1)
    name = sess.get_inputs()[0].name
    times: dict[int, list[float]] = {size: [] for size in RUN_SIZES}
    for _ in range(rounds + 1):  # the first round warms up and is dropped
        for size in RUN_SIZES:
            usable = len(tiles) - len(tiles) % size
            start = time.perf_counter()
            for i in range(0, usable, size):
                sess.run(None, {name: tiles[i : i + size]})
            times[size].append((time.perf_counter() - start) / usable)
    return {size: float(np.median(t[1:])) * 1000 for size, t in times.items()}


def per_op_type(model: Path, tiles: np.ndarray) -> tuple[int, list[tuple[str, int, float]]]:
    """Nodes in the graph, and (op type, nodes, us per tile) from ORT's profiler, runs of 8."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        usable = len(tiles) - len(tiles) % 8
        for i in range(0, usable, 8):
            sess.run(None, {name: tiles[i : i + 8]})
        events = json.loads(Path(sess.end_profiling()).read_text())
    spent: collections.Counter[str] = collections.Counter()
    nodes: dict[str, set[str]] = collections.defaultdict(set)
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            op = e["args"]["op_name"]
            spent[op] += e["dur"]
            nodes[op].add(e["name"])
    total_nodes = sum(len(v) for v in nodes.values())
    rows = [(op, len(nodes[op]), us / usable) for op, us in spent.most_common()]
    return total_nodes, rows


def decode_side(paths: list[Path], spec: Any) -> tuple[float, list[tuple[str, float]]]:
    """ms per image of `scanning.prepare`, and its largest parts (cProfile, own time)."""
    from imgcheck.inputs import InputItem
    from imgcheck.scanning import prepare

    for p in paths:  # warm the page cache and the imports
        prepare(InputItem(str(p)), spec)
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    for p in paths:
        prepare(InputItem(str(p)), spec)
    prof.disable()
    per_image = (time.perf_counter() - start) / len(paths) * 1000
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    parts: collections.Counter[str] = collections.Counter()
    for (file, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        label = func if file == "~" else f"{Path(file).name}:{func}"
        parts[label] += tottime
    return per_image, [(k, v / len(paths) * 1000) for k, v in parts.most_common(6)]


def tiles_needed(info: Any, per_image: list[np.ndarray]) -> dict[str, float]:
    """Mean tiles a real photo is scored on under the shipped cascade, tiles in scan order vs
    most textured / colourful first (luma std^2 + mean channel spread^2 on a 2x subsample)."""
    from imgcheck.cascade import Cascade, stops, tile_order
    from imgcheck.session import Device, create_session

    entry = info.meta
    cascade = Cascade.from_manifest(entry.get("cascade"))
    if cascade is None:
        return {}
    how = str(info.view.get("aggregate", "mean"))
    model = Path(info.path)
    sess = create_session(model, Device.CPU, 1)
    name = sess.get_inputs()[0].name
    used = {"scan order": [], "content first": []}
    for tiles in per_image:
        probs = np.concatenate(
            [sess.run(None, {name: tiles[i : i + 8]})[0] for i in range(0, len(tiles), 8)]
        ).astype(np.float64)
        t = tiles[:, ::2, ::2].astype(np.float32)
        luma = (t @ np.array([0.299, 0.587, 0.114], np.float32)).reshape(len(t), -1)
        spread = (t.max(-1) - t.min(-1)).reshape(len(t), -1).mean(1)
        orders = {
            "scan order": np.array(tile_order(len(tiles))),
            "content first": np.argsort(-(luma.std(1) ** 2 + spread**2), kind="stable"),
        }
        for key, order in orders.items():
            p = probs[order]
            n = next((k for k, thr in cascade.stages if stops(p, len(p), k, thr, how)), len(p))
            used[key].append(n)
    return {k: float(np.mean(v)) for k, v in used.items()}


def score_vs_raw(paths: list[Path], rounds: int) -> dict[str, tuple[float, float]]:
    """CPU and wall ms per image of `Scanner.score` (the cascade, batches of the scanner's size)
    against the same tiles run raw on the scanner's session by one thread per lane, runs of 8:
    what the scan's own Python around the model costs. Interleaved rounds, medians."""
    import threading

    from imgcheck.inputs import InputItem
    from imgcheck.scanning import Scanner

    scanner = Scanner(None, cascade=True)
    prepared = [scanner.prepare(InputItem(str(p))) for p in paths]
    kept = [(p.crops, p.boxes) for p in prepared]

    def via_score() -> None:
        for p, (crops, boxes) in zip(prepared, kept, strict=True):
            p.crops, p.boxes = crops, boxes
        for i in range(0, len(prepared), scanner.batch_size):
            scanner.score(prepared[i : i + scanner.batch_size])

    via_score()
    scored = [
        crops[: len(p.result.boxes)]
        for p, (crops, _) in zip(prepared, kept, strict=True)
        if crops is not None
    ]
    tiles = np.concatenate(scored)
    name = scanner.session.get_inputs()[0].name

    def via_raw() -> None:
        def lane(part: np.ndarray) -> None:
            for i in range(0, len(part), 8):
                scanner.session.run(None, {name: part[i : i + 8]})

        parts = [tiles[j :: scanner.lanes] for j in range(scanner.lanes)]
        threads = [threading.Thread(target=lane, args=(part,)) for part in parts[1:]]
        for t in threads:
            t.start()
        lane(parts[0])
        for t in threads:
            t.join()

    spent: dict[str, list[tuple[float, float]]] = {"score": [], "raw": []}
    for _ in range(rounds):
        for key, fn in (("score", via_score), ("raw", via_raw)):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            spent[key].append((time.perf_counter() - wall, time.process_time() - cpu))
    n = len(paths)
    out = {
        k: (
            float(np.median([c for _, c in v])) / n * 1000,
            float(np.median([w for w, _ in v])) / n * 1000,
        )
        for k, v in spent.items()
    }
    out["tiles"] = (len(tiles) / n, float(scanner.lanes))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _corpus.add_photo_args(ap, rounds=7)
    ap.add_argument("--tiles", type=int, default=256, help="tiles for the per-tile timings")
    args = ap.parse_args(argv)
    corpus = _corpus.photo_corpus(ap, args)
    from imgcheck.models import resolve
    from imgcheck.view import ViewSpec

    info = resolve("detector", args.model)
    model = Path(info.path)
    spec = ViewSpec.from_dict(info.view)
    _corpus.warm_cache(corpus.paths)
    per_image = tiles_of(corpus.paths, spec)
    pool = np.concatenate(per_image)[: args.tiles]

    print(f"machine: {_corpus.machine()}")
    print(f"corpus: {len(corpus.paths)} real JPEGs 0.3-3.4 MP from {args.photos}")
    print(f"model: {model} (view {spec.to_dict()})")
    sizes = per_run_size(model, pool, args.rounds)
    print(f"detector graph, one thread, {len(pool)} tiles, median of {args.rounds} rounds:")
    for size, ms in sizes.items():
        print(f"  runs of {size:2d} tiles  {ms:6.3f} ms per tile  ({ms / sizes[8]:.2f}x runs of 8)")
    nodes, ops = per_op_type(model, pool)
    total = sum(us for _, _, us in ops)
    print(
        f"detector graph by op type (ORT profiler, runs of 8; profiling inflates the total): {nodes} nodes, {total:.0f} us per tile"
    )
    for op, count, us in ops[:10]:
        print(f"  {op:14s} {count:4d} nodes  {us:7.1f} us per tile  {us / total:6.1%}")
    ms, parts = decode_side(corpus.paths, spec)
    print(f"decode side (scanning.prepare, one thread): {ms:.2f} ms per image; own time:")
    for label, part in parts:
        print(f"  {label:40s} {part:6.2f} ms  {part / ms:6.1%}")
    split = score_vs_raw(corpus.paths, args.rounds)
    tiles, lanes = split.pop("tiles")
    print(f"cascade scoring vs the same {tiles:.2f} tiles per image run raw ({lanes:.0f} lanes):")
    for key, (cpu, wall) in split.items():
        print(
            f"  {key:6s} {cpu:6.2f} ms CPU per image, {wall:6.2f} ms wall, {cpu / wall:.2f} cores"
        )
    needed = tiles_needed(info, per_image)
    if needed:
        tiles_all = float(np.mean([len(t) for t in per_image]))
        print(f"tiles scored per real photo under the shipped cascade (of {tiles_all:.2f}):")
        for key, value in needed.items():
            print(f"  {key:14s} {value:5.2f}  ({value / needed['scan order']:.3f}x scan order)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
