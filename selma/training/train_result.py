"""`TrainResult`: what one `train_expert` call left behind (the expert, its files, steps, loss, time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..experts.lora_expert import LoraExpert
from ..experts.style_inject_files import StyleInjectExpert

FINAL_LOSS_WINDOW = 50  # final_loss: the mean step loss over the last this many steps (one step's loss is noise)


@dataclass
class TrainResult:
    """What a training call left behind. `expert` is the trained expert in memory (also in `expert_path`)."""

    skill: str
    expert_path: Path
    work_dir: Path
    steps: int
    total_steps: int
    resumed_from: int
    final_loss: float | None  # mean of the last FINAL_LOSS_WINDOW step losses
    seconds: float
    log_path: Path
    loss_curve_path: Path
    checkpoint_path: Path | None
    preview_paths: list[Path] = field(default_factory=list)
    expert: LoraExpert | StyleInjectExpert | None = None

    def summary(self) -> str:
        window = min(FINAL_LOSS_WINDOW, self.steps)
        loss = f"{self.final_loss:.4f} (mean of the last {window} steps)" if self.final_loss is not None else "n/a"
        start = f" (resumed at {self.resumed_from})" if self.resumed_from else ""
        return (
            f"{self.skill}: {self.steps}/{self.total_steps} steps{start} in {self.seconds:.0f} s, "
            f"loss {loss} -> {self.expert_path}"
        )
