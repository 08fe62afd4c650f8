"""What binds the scan cascade of the shipped head: the margin or the AUC bound? (MODEL_CARD
"Scan cascade").

The shipped head is read back from detector.onnx (`export.regraph.head_from_graph`), a run's
validation zoo scored with it (a run rebuilt from the shipped models, `trainer.rebuild`, so
its validation photos are the ones the head never trained on), and the cascade calibrated at
the shipped threshold with other margins below the lowest kept partial score and other steps
of the AUC bound's lowering (`trainer.cascade.MARGIN`, `AUC_STEP`); each is measured on the
whole validation set and on held-out halves (3 splits). Round 2, stop 25, from the repository
root in the dev venv (about 4 minutes on 2 cores):
`python docs/model_card/probes/cascade_margin.py /work/runs/v21`.
"""

import sys
from pathlib import Path

from imgcheck.export.regraph import head_from_graph, read_models
from imgcheck.trainer import cascade
from imgcheck.trainer.lofo import ZooData

manifest, graph = read_models(Path("detector/models"))
threshold = float(manifest["detector"]["threshold"])
how = manifest["detector"]["view"]["aggregate"]
groups = cascade.val_tiles(head_from_graph(graph), ZooData.load(Path(sys.argv[1]) / "zoo"))
for step in (0.25, 0.1, 0.05):
    cascade.AUC_STEP = step
    for margin in (0.5, 0.25, 0.0):
        chosen = cascade.calibrate(groups, threshold, how, margin=margin)
        s = cascade.summary(cascade.measure(groups, chosen, threshold, how))
        held = [
            cascade.split_half(groups, threshold, how, seed=k, margin=margin)["worst_kept"]
            for k in range(3)
        ]
        stages = ", ".join(f"{k}: {t:.4f}" for k, t in chosen)
        print(
            f"step {step} margin {margin}: stages {stages}; real tiles "
            f"{s['real_tiles_per_image']:.2f} of {s['real_tiles_without']:.2f}, stopped "
            f"{s['real_stopped']:.3f}; largest AUC change {s['max_auc_change']:.4f}; kept "
            f"{s['worst_kept']:.3f}, on held-out halves {min(held):.3f}",
            flush=True,
        )
