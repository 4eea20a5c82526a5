"""What a training run writes and reads, as a mixin of the trainer (`loop._ExpertTrainer`): the work-folder lock,
checkpoints, the log and loss curve, previews, the expert file and the `TrainResult`.

`TrainerFiles` reads the run's state off `self` (config, paths, backend, data, accelerator, params, step,
train_log, fingerprint; set by the trainer) and calls `_non_finite_message` (`trainer_checks.TrainerChecks`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from .. import __version__
from ..experts.lora_expert import LoraExpert
from ..experts.style_inject_files import StyleInjectExpert
from .adapter import ADAPTER_NAME, style_inject_config
from .backend import ExpertExporter, StyleInjectExporter
from .checkpoint import save_checkpoint
from .errors import NonFiniteLoss, TrainingBusy
from .previews import save_previews
from .train_log import draw_loss_curve
from .train_result import FINAL_LOSS_WINDOW, TrainResult

log = logging.getLogger(__name__)


class TrainerFiles:
    """The trainer's files: see the module docstring."""

    def _claim_work_dir(self):
        """The main process locks the work folder: two runs of one skill into one folder would corrupt it."""
        if not self.accelerator.is_main_process:
            return None
        from ..stage_lock import StageBusy, acquire

        try:
            return acquire(self.paths.work, "train", f"training {self.paths.skill!r} into {self.paths.work}")
        except StageBusy as e:
            raise TrainingBusy(f"{e} (or train into another run directory)") from None

    def _checkpoint_state(self, finished: bool) -> dict:
        return {
            "step": self.step,
            "finished": finished,
            "skill": self.paths.skill,
            "config": self.config.to_json(),
            "base_model": self.fingerprint,
            "world_size": self.accelerator.num_processes,
            "selma_version": __version__,
        }

    def _save_checkpoint(self, finished: bool) -> Path:
        bad = [name for name, p in self.params.items() if not torch.isfinite(p).all()]
        if bad:  # never replace a good checkpoint with a broken one
            raise NonFiniteLoss(
                self._non_finite_message(self.step, f"the adapter weight {bad[0]} became non-finite"), self.step
            )
        self.train_log.flush()
        path = save_checkpoint(self.accelerator, self.paths.work, self.params, self._checkpoint_state(finished))
        self.last_saved_step = self.step
        if self.accelerator.is_main_process:
            self._write_log_and_curve()
        return path

    def _write_log_and_curve(self) -> None:
        if not self.accelerator.is_main_process:
            return
        self.train_log.flush()
        records = self.train_log.records()
        if records:
            draw_loss_curve(records, self.paths.loss_curve, title=f"{self.paths.skill}: training loss")

    def _previews(self, step: int) -> None:
        if not self.config.preview_every or not self.accelerator.is_main_process:
            return
        prompts = list(self.config.preview_prompts) or list(dict.fromkeys(self.data.captions))[:2]
        with self.accelerator.autocast():
            self.preview_paths += save_previews(self.backend, prompts, step, self.paths.previews, self.config)

    def _write_expert(self) -> LoraExpert | StyleInjectExpert:
        from ..experts.lora_files import lora_expert_from_peft, save_lora_expert

        if self.config.method == "styleinject":
            return self._write_style_inject_expert()
        if isinstance(self.backend, ExpertExporter):
            expert = self.backend.export_expert(ADAPTER_NAME)
        else:
            expert = lora_expert_from_peft(self.backend.module, ADAPTER_NAME)
        expert.metadata.update(self._expert_metadata())
        if self.accelerator.is_main_process:
            save_lora_expert(self.paths.expert, expert)
            log.info("%s: expert written to %s", self.paths.skill, self.paths.expert)
        self.accelerator.wait_for_everyone()
        return expert

    def _write_style_inject_expert(self) -> StyleInjectExpert:
        from ..experts.style_inject_from_model import style_inject_expert_from_model
        from ..experts.style_inject_save import save_style_inject_expert

        config = style_inject_config(self.config)
        if isinstance(self.backend, StyleInjectExporter):  # ComfyUI: LDM names inside, diffusers names in files
            tensors = self.backend.export_style_inject(ADAPTER_NAME)
        else:
            tensors = style_inject_expert_from_model(self.backend.module, ADAPTER_NAME).tensors
        # The seed the adapter was initialised from: experts that share it (and their config and base model)
        # started from the same weights, which parameter averaging needs (merging/style_inject_merge.py).
        metadata = {**self._expert_metadata(), "init_seed": self.config.seed}
        expert = StyleInjectExpert(config, {k: t.detach().to("cpu", copy=True) for k, t in tensors.items()}, metadata)
        if self.accelerator.is_main_process:
            save_style_inject_expert(self.paths.expert, expert, config)
            log.info("%s: StyleInject expert written to %s", self.paths.skill, self.paths.expert)
        self.accelerator.wait_for_everyone()
        return expert

    def _expert_metadata(self) -> dict:
        family = getattr(self.backend, "family", None)  # "flux" / "sd3" (DiT); UNet experts have none
        return {
            **({"family": family} if family else {}),
            "method": self.config.method,
            "skill": self.paths.skill,
            "base_model": self.fingerprint,
            "steps": self.step,
            "config": self.config.to_json(),
            "dataset": self.data.describe(),
            "final_loss": self._final_loss(),
            "world_size": self.accelerator.num_processes,
        }

    def _final_loss(self) -> float | None:
        losses = [r["loss"] for r in self.train_log.records()[-FINAL_LOSS_WINDOW:]]
        return sum(losses) / len(losses) if losses else None

    def _result(self, steps: int, start: int, started: float, checkpoint: Path | None, expert=None) -> TrainResult:
        if expert is None and self.paths.expert.is_file():
            from ..experts.lora_files import load_lora_expert
            from ..experts.style_inject_files import load_style_inject_expert

            load = load_style_inject_expert if self.config.method == "styleinject" else load_lora_expert
            expert = load(self.paths.expert)
        previews = sorted(self.paths.previews.glob("*.png")) if self.paths.previews.is_dir() else []
        return TrainResult(
            skill=self.paths.skill,
            expert_path=self.paths.expert,
            work_dir=self.paths.work,
            steps=steps,
            total_steps=self.config.steps,
            resumed_from=start,
            final_loss=self._final_loss(),
            seconds=time.monotonic() - started,
            log_path=self.paths.log,
            loss_curve_path=self.paths.loss_curve,
            checkpoint_path=checkpoint,
            preview_paths=previews,
            expert=expert,
        )
