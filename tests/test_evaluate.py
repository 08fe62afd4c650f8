"""`imgcheck evaluate` and `detector.evaluate`: numbers, exclusions, output formats, exit codes.

Uses the fake ONNX detector of `fixtures_onnx` (colourful images score ~1, muted ones ~0), so
no torch and no trained model are needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures_cli import run_cli
from fixtures_onnx import colourful, muted, write_detector, write_model_folder
from PIL import Image

from imgcheck.metrics import binary_report

pytest.importorskip(
    "onnxruntime",
    reason="onnxruntime is not installed (the cpu extra)",
    exc_type=ModuleNotFoundError,
)


def _save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture()
def dataset(tmp_path: Path) -> dict[str, Path]:
    """3 real (muted) + 1 real that looks colourful (a false positive) + a grey + a broken file;
    3 colorized (colourful) + 1 colorized that looks muted (a miss)."""
    real, fake = tmp_path / "real", tmp_path / "fake"
    for i in range(3):
        _save(real / f"r{i}.png", muted(seed=i))
        _save(fake / f"f{i}.png", colourful(seed=10 + i))
    _save(real / "r_fp.png", colourful(seed=99))
    _save(fake / "f_miss.png", muted(seed=98))
    _save(real / "grey.png", np.full((80, 96), 120, np.uint8))
    (real / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    model = write_model_folder(tmp_path / "model", threshold=0.5)
    return {"real": real, "fake": fake, "model": model, "root": tmp_path}


def _run(*args: str):
    return run_cli(["evaluate", *args])


def _reference(dataset: dict[str, Path], threshold: float | None = None) -> dict:
    """The same metrics computed independently from the public scan() API."""
    from imgcheck.scanning import scan

    labels, scores = [], []
    for label, folder in ((0, dataset["real"]), (1, dataset["fake"])):
        for r in scan([str(folder)], model=str(dataset["model"]), threshold=threshold):
            if r.status.value == "ok":
                labels.append(label)
                scores.append(r.score)
    return binary_report(labels, scores, 0.5 if threshold is None else threshold)


def test_evaluate_api_matches_scan_and_counts_exclusions(dataset) -> None:
    from imgcheck.evaluate import evaluate

    result = evaluate(dataset["real"], dataset["fake"], model=dataset["model"], device="cpu")
    want = _reference(dataset)
    for key in ("auc", "ap", "acc_real", "acc_fake", "hter", "tpr_at_fpr1", "tpr_at_fpr5"):
        assert result.metrics[key] == pytest.approx(want[key]), key
    # 4 real scored (one false positive), 4 fake scored (one miss).
    assert result.metrics["acc_real"] == pytest.approx(3 / 4)
    assert result.metrics["acc_fake"] == pytest.approx(3 / 4)
    assert result.metrics["hter"] == pytest.approx(0.25)
    assert result.threshold == 0.5
    assert result.counts["real"].to_dict() == {"ok": 4, "grayscale": 1, "too_small": 0, "error": 1}
    assert result.counts["fake"].to_dict() == {"ok": 4, "grayscale": 0, "too_small": 0, "error": 0}
    assert [e["path"].endswith("broken.jpg") for e in result.errors] == [True]


def test_cli_json_output_and_threshold_override(dataset) -> None:
    res = _run(
        "--real", str(dataset["real"]), "--fake", str(dataset["fake"]),
        "--model", str(dataset["model"]), "--format", "json", "--threshold", "0.001",
        "--device", "cpu",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["threshold"] == 0.001
    # At 0.001 everything is flagged: every real image is a false positive, no miss.
    assert data["metrics"]["acc_real"] == 0.0 and data["metrics"]["acc_fake"] == 1.0
    assert data["metrics"]["hter"] == 0.5
    assert data["metrics"]["auc"] == pytest.approx(_reference(dataset, 0.001)["auc"])
    assert data["counts"]["real"] == {"ok": 4, "grayscale": 1, "too_small": 0, "error": 1}
    assert set(data) >= {"metrics", "counts", "threshold", "model", "provider", "errors"}
    assert "unreadable" in res.stderr


def test_cli_table_output(dataset) -> None:
    res = _run("--real", str(dataset["real"]), "--fake", str(dataset["fake"]),
               "--model", str(dataset["model"]))  # fmt: skip
    assert res.exit_code == 0, res.output
    out = res.stdout
    for label in ("ROC AUC", "Average precision", "Accuracy on real", "Accuracy on colorized",
                  "HTER", "TPR at 1% FPR", "TPR at 5% FPR"):  # fmt: skip
        assert label in out
    assert "75.0 %" in out  # accuracy on real and on colorized
    assert "4 scored, 1 grayscale, 1 error" in out


def test_globs_are_accepted(dataset) -> None:
    res = _run("--real", str(dataset["real"] / "r*.png"), "--fake", str(dataset["fake"] / "*.png"),
               "--model", str(dataset["model"]), "-f", "json")  # fmt: skip
    assert res.exit_code == 0, res.output
    # The glob leaves out the grey and the broken file of the real folder.
    assert json.loads(res.stdout)["counts"]["real"] == {
        "ok": 4,
        "grayscale": 0,
        "too_small": 0,
        "error": 0,
    }
    res = _run("--real", str(dataset["real"] / "x*.png"), "--fake", str(dataset["fake"]))
    assert res.exit_code == 2 and "not found" in res.stderr


def test_several_paths_after_one_flag(dataset) -> None:
    """What an unquoted shell glob expands to: `--real r0.png r1.png ... --fake f0.png ...`."""
    real = sorted(str(p) for p in dataset["real"].glob("r*.png"))
    fake = sorted(str(p) for p in dataset["fake"].glob("*.png"))
    res = _run("--real", *real, "--fake", *fake, "--model", str(dataset["model"]), "-f", "json")
    assert res.exit_code == 0, res.output
    counts = json.loads(res.stdout)["counts"]
    assert counts["real"]["ok"] == len(real) == 4 and counts["fake"]["ok"] == len(fake) == 4
    res = _run(f"--real={real[0]}", real[1], "--fake", fake[0], "--model", str(dataset["model"]))
    assert res.exit_code == 0, res.output  # --real=X Y too


def test_bare_onnx_model_file_is_accepted(dataset) -> None:
    onnx_file = write_detector(dataset["root"] / "det.onnx", threshold=0.3)
    res = _run("--real", str(dataset["real"]), "--fake", str(dataset["fake"]),
               "--model", str(onnx_file), "-f", "json")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["threshold"] == pytest.approx(0.3)


@pytest.mark.parametrize(
    "case, needle",
    [
        ("missing", "not found"),
        ("overlap", "overlap"),
        ("corrupt_model", "sha256"),
        ("not_a_model", "model"),
        ("all_grey", "no image could be scored"),
        ("all_thumbnails", "(0 grayscale, 1 too small, 0 errors)"),
        ("bad_threshold", "threshold"),
    ],
)
def test_bad_input_exits_2_with_a_message(dataset, case: str, needle: str) -> None:
    real, fake, model = str(dataset["real"]), str(dataset["fake"]), str(dataset["model"])
    args = ["--real", real, "--fake", fake, "--model", model]
    if case == "missing":
        args[3] = str(dataset["root"] / "nope")
    elif case == "overlap":
        args[3] = str(dataset["root"])  # --fake contains --real
    elif case == "corrupt_model":
        args[5] = str(write_model_folder(dataset["root"] / "bad", corrupt_sha=True))
    elif case == "not_a_model":
        junk = dataset["root"] / "junk.onnx"
        junk.write_bytes(b"not onnx")
        args[5] = str(junk)
    elif case == "all_grey":
        grey = dataset["root"] / "grey"
        _save(grey / "g.png", np.full((80, 96), 90, np.uint8))
        args[1] = str(grey)
    elif case == "all_thumbnails":  # below the test model's 64-px tile: not scored
        small = dataset["root"] / "small"
        _save(small / "t.png", colourful(40, 30))
        args[1] = str(small)
    elif case == "bad_threshold":
        args += ["--threshold", "1.5"]
    res = _run(*args)
    assert res.exit_code == 2, res.output
    assert needle in res.output.lower()
    assert "Traceback" not in res.output


def test_no_torch_and_lazy_onnxruntime() -> None:
    code = (
        "import sys\n"
        "import imgcheck.cli_evaluate\n"
        "assert 'onnxruntime' not in sys.modules, 'cli module imported onnxruntime'\n"
        "import imgcheck.evaluate, imgcheck.metrics\n"
        "assert 'torch' not in sys.modules, 'runtime imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_variant_is_measured_and_missing_one_exits_2(dataset) -> None:
    from imgcheck.evaluate import evaluate

    model = write_model_folder(dataset["root"] / "mv", variants=("int8",))
    args = ["--real", str(dataset["real"]), "--fake", str(dataset["fake"]), "--model", str(model)]
    res = _run(*args, "--variant", "int8", "-f", "json", "--device", "cpu")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["variant"] == "int8" and data["model"].endswith("detector.int8.onnx")
    assert data["metrics"]["auc"] == pytest.approx(_reference(dataset)["auc"])
    res = _run(*args, "--variant", "int8")
    assert res.exit_code == 0 and "provider: cpu, int8" in " ".join(res.stdout.split())
    result = evaluate(dataset["real"], dataset["fake"], model=model, variant="int8", workers=2)
    assert result.variant == "int8"
    res = _run(*args, "--variant", "fp16")
    assert res.exit_code == 2
    assert "no fp16 detector variant (available: fp32, int8)" in res.output
    assert "Traceback" not in res.output
