"""The trainer's checks and messages, as a mixin of `loop._ExpertTrainer`: may a checkpoint be resumed, and
what to tell the user on a non-finite loss or out of memory.

`TrainerChecks` reads the run's state off `self` (config, paths, accelerator, fingerprint, step, last_saved_step,
mixed_precision; set by the trainer).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .config import TrainConfig
from .errors import CheckpointMismatch

log = logging.getLogger(__name__)


class TrainerChecks:
    """The trainer's checks and messages: see the module docstring."""

    def _check_resumable(self, checkpoint: Path, state: dict) -> None:
        saved = TrainConfig.from_json(state.get("config", {}))
        differences = self.config.replay_differences(saved)
        if differences:
            listed = ", ".join(f"{k}={theirs!r} (now {ours!r})" for k, (ours, theirs) in differences.items())
            raise CheckpointMismatch(
                f"the checkpoint in {checkpoint} was trained with {listed}; resume with the same settings, or start "
                "over with resume=False (--no-resume), which replaces it at the first save"
            )
        if state.get("base_model") != self.fingerprint:
            raise CheckpointMismatch(
                f"the checkpoint in {checkpoint} was trained on base model {state.get('base_model')}, this one is "
                f"{self.fingerprint}; use the same model to resume, or start over with resume=False (--no-resume)"
            )
        if state["step"] > self.config.steps:
            raise CheckpointMismatch(
                f"the checkpoint in {checkpoint} is at step {state['step']}, beyond steps={self.config.steps}; raise "
                "steps to continue it, or start over with resume=False (--no-resume)"
            )
        if state.get("world_size", 1) != self.accelerator.num_processes:
            log.warning(
                "resuming a %s-process checkpoint on %d processes: batches from here on differ from the original run",
                state.get("world_size"),
                self.accelerator.num_processes,
            )
        changed = [k for k, v in saved.to_json().items() if self.config.to_json().get(k) != v]
        if changed:
            log.info("resuming with changed settings: %s", ", ".join(changed))

    def _non_finite_message(self, step: int, what: str) -> str:
        kept = (
            f"the last good checkpoint (step {self.last_saved_step}) in {self.paths.work / 'checkpoint'} is kept "
            "and a rerun resumes from it"
            if self.last_saved_step
            else "no checkpoint had been saved yet, so a rerun starts over"
        )
        precision = (
            f" or train in full precision (mixed_precision='no', --mixed-precision no; now {self.mixed_precision})"
            if self.mixed_precision != "no"
            else ""
        )
        return (
            f"{what} at step {step} of {self.config.steps} while training {self.paths.skill!r}; nothing from that "
            f"step was applied or saved, and {kept}. Lower the learning rate (now {self.config.learning_rate:g}; "
            f"try {self.config.learning_rate / 10:g}){precision}, then rerun; if the run was already diverging, "
            "start over with resume=False (--no-resume)."
        )

    def out_of_memory_message(self, error: str) -> str:
        c = self.config
        kept = (
            f"the last checkpoint (step {self.last_saved_step}) is kept and a rerun resumes from it"
            if self.last_saved_step
            else "no checkpoint had been saved yet"
        )
        return (
            f"out of memory while training {self.paths.skill!r} at step {self.step + 1} ({error}). Settings: "
            f"batch_size={c.batch_size}, grad_accum={c.grad_accum}, resolution={c.resolution}, rank={c.rank}, "
            f"gradient_checkpointing={c.gradient_checkpointing}, mixed_precision={c.mixed_precision}. Lower "
            f"batch_size and raise grad_accum to keep the effective batch of {c.effective_batch} (e.g. batch_size="
            f"{max(1, c.batch_size // 2)}, grad_accum={c.grad_accum * 2}), turn on gradient checkpointing, or use "
            f"fp16/bf16 mixed precision; {kept}."
        )
