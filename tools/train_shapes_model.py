"""Train the shipped shapes model from scratch (selma/models/shapes/), seeded, on 2 CPU cores by default.

    python tools/train_shapes_model.py                      # the shipped plan (about an hour on 2 cores)
    python tools/train_shapes_model.py --unet-steps 200 --out /tmp/shapes-smoke --work /tmp/shapes-work

The phases and the data are described in `selma/shapes/model_training.py`. Work state (the VAE, the encoded
dataset, denoiser checkpoints every 250 steps) lives in --work, so an interrupted run resumes where it stopped.
The report (training_report.json beside the weights) records the plan, the time and the loss curves.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import torch

    from selma.shapes.model import WEIGHTS_DIR
    from selma.shapes.model_training import TrainingPlan, train_shapes_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help=f"the model folder (default {WEIGHTS_DIR})")
    parser.add_argument("--work", type=Path, default=Path(".shapes-model-work"), help="resumable work state")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    for f in fields(TrainingPlan):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plan = TrainingPlan(**{f.name: getattr(args, f.name) for f in fields(TrainingPlan)})
    report = train_shapes_model(args.out, args.work, plan, log=lambda line: print(line, flush=True))
    return 0 if report["finished"] else 3


if __name__ == "__main__":
    raise SystemExit(main())
