"""`train_expert`: train one skill's expert (LoRA or StyleInject) on its dataset folder, against any `DenoiserBackend`.

Reads top to bottom like diffusers' training scripts: check the inputs → cache latents and text → freeze
the base and inject the adapter (PEFT; `config.method`) → fp32 adapter weights → AdamW → the loop under HF
Accelerate (mixed precision, gradient accumulation, data parallel under `accelerate launch`) →
checkpoints, previews, log → the expert file. Files (with `out_dir = RUN_DIR/experts`):

    <out_dir>/<skill>.safetensors        the expert (expert_files / style_inject_files format), written at the end
    <out_dir>/<skill>/checkpoint/        the resumable state (see checkpoint.py)
    <out_dir>/<skill>/train_log.jsonl    step, loss, lr, grad_norm, seconds per optimizer step
    <out_dir>/<skill>/loss_curve.png     raw + smoothed loss
    <out_dir>/<skill>/previews/          step<NNNNNN>_<i>.png, if preview_every > 0

Data parallel: each process takes its slice of every global micro-batch (data.StepSampler) and the adapter
gradients are averaged with `accelerator.reduce` before each optimizer step (the backend calls its own
module, so DDP's forward wrapper cannot sit in between; one flat all-reduce per step does the same job).

The trainer's parts beside this file: `trainer_files.py` (what a run writes and reads), `trainer_checks.py`
(resume checks, error messages), `accelerator.py`, `lr_schedule.py`; its result is `train_result.TrainResult`.
"""

from __future__ import annotations

import gc
import logging
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..stage_lock import release
from .accelerator import average_gradients, make_accelerator
from .adapter import adapter_config, check_target_modules, injected_adapter
from .backend import DenoiserBackend
from .checkpoint import find_checkpoint, load_checkpoint, read_checkpoint_state
from .config import TrainConfig
from .data import StepSampler, TrainingData
from .errors import NonFiniteLoss, TrainingOutOfMemory
from .lr_schedule import WarmupThenConstant
from .train_log import TrainLog
from .train_result import TrainResult
from .trainer_checks import TrainerChecks
from .trainer_files import TrainerFiles

log = logging.getLogger(__name__)

StepFn = Callable[[int, int, float], None]
_SKILL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class ExpertPaths:
    """Where one skill's training puts its files."""

    out_dir: Path
    skill: str

    @property
    def expert(self) -> Path:
        return self.out_dir / f"{self.skill}.safetensors"

    @property
    def work(self) -> Path:
        return self.out_dir / self.skill

    @property
    def log(self) -> Path:
        return self.work / "train_log.jsonl"

    @property
    def loss_curve(self) -> Path:
        return self.work / "loss_curve.png"

    @property
    def previews(self) -> Path:
        return self.work / "previews"


def train_expert(
    backend: DenoiserBackend,
    dataset_dir: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    config: TrainConfig,
    *,
    skill: str,
    on_step: StepFn | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train the expert of `skill` (LoRA or StyleInject: `config.method`) on `dataset_dir` (one folder, or a list
    of folders trained on as one dataset: the joint expert); write `out_dir/<skill>.safetensors` (+ work folder).

    `on_step(step, total, loss)` is called after every optimizer step; if it raises (a Cancel), a checkpoint
    of that step is saved and the exception re-raised, so the next call resumes there. With `resume` (the
    default) a checkpoint in the work folder is continued, and a finished run returns at once. Inputs are
    checked before anything is written; on NaN loss or out-of-memory the last good checkpoint stays.
    """
    if not isinstance(skill, str) or not _SKILL_RE.match(skill):
        raise ValueError(f"skill={skill!r} is not a valid name; use letters, digits, '_', '-' or '.' (max 64)")
    buckets = {"aspect_buckets": config.aspect_buckets, "bucket_step": config.bucket_step}
    data = TrainingData.from_folders(dataset_dir, config.resolution, **buckets)
    check_target_modules(backend.module, adapter_config(backend, config).target_modules)
    if config.batch_size > len(data):
        log.warning(
            "batch_size=%d is larger than the %d examples of %s: each batch repeats examples",
            config.batch_size,
            len(data),
            ", ".join(str(s) for s in data.sources),
        )
    trainer = _ExpertTrainer(backend, data, ExpertPaths(Path(out_dir), skill), config, on_step, resume)
    out_of_memory = None
    try:
        return trainer.run()
    except torch.OutOfMemoryError as e:
        out_of_memory = str(e).splitlines()[0] if str(e) else "out of memory"
    # Raised outside the except block, so the failed step's tensors (held by the traceback) can be freed first.
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    raise TrainingOutOfMemory(trainer.out_of_memory_message(out_of_memory))


class _ExpertTrainer(TrainerFiles, TrainerChecks):
    """One call of `train_expert`: holds the run's state so each stage reads as one short method.

    The run and its optimizer steps are here; files and checks come from the mixins `TrainerFiles` and
    `TrainerChecks`."""

    def __init__(
        self,
        backend: DenoiserBackend,
        data: TrainingData,
        paths: ExpertPaths,
        config: TrainConfig,
        on_step: StepFn | None,
        resume: bool,
    ) -> None:
        self.backend, self.data, self.paths, self.config = backend, data, paths, config
        self.on_step, self.resume = on_step, resume
        self.last_saved_step: int | None = None
        self.step = 0
        self.preview_paths: list[Path] = []

    # ------------------------------------------------------------------ the run
    def run(self) -> TrainResult:
        config, paths = self.config, self.paths
        started = time.monotonic()
        self.accelerator = accelerator = make_accelerator(config, self.backend.device)
        self.mixed_precision = accelerator.mixed_precision
        self.fingerprint = self.backend.fingerprint()
        checkpoint = find_checkpoint(paths.work) if self.resume else None
        state = read_checkpoint_state(checkpoint) if checkpoint else None
        if state is not None:
            self._check_resumable(checkpoint, state)
            self.last_saved_step = state["step"]
        accelerator.wait_for_everyone()  # every process has read the checkpoint before the main one replaces it
        lock = self._claim_work_dir()
        self.train_log = TrainLog(self.paths.log, enabled=accelerator.is_main_process)
        try:
            finished = state is not None and state.get("finished") and state["step"] == config.steps
            if finished and paths.expert.is_file():
                log.info("%s: already trained to %d steps; nothing to do", paths.skill, config.steps)
                return self._result(state["step"], state["step"], started, checkpoint)
            return self._train(checkpoint, state, started)
        finally:
            if lock is not None:
                release(lock)

    def _train(self, checkpoint: Path | None, state: dict | None, started: float) -> TrainResult:
        config, backend, accelerator = self.config, self.backend, self.accelerator
        if config.cache_latents or config.cache_text:
            from accelerate.utils import gather_object

            self.data.build_caches(  # under accelerate launch each process encodes its share of the chunks
                backend,
                latents=config.cache_latents,
                text=config.cache_text,
                batch_size=config.batch_size,
                rank=accelerator.process_index,
                world_size=accelerator.num_processes,
                gather=gather_object,
            )
            if config.cache_text and not config.preview_every and hasattr(backend, "offload_text_encoders"):
                backend.offload_text_encoders()  # FLUX / SD3: T5's memory is the transformer's from here on
        if config.gradient_checkpointing:
            backend.enable_gradient_checkpointing()
        self.sampler = StepSampler(
            len(self.data),
            config.batch_size,
            config.grad_accum,
            config.seed,
            world_size=accelerator.num_processes,
            rank=accelerator.process_index,
            groups=self.data.groups(),
        )
        with injected_adapter(backend.module, adapter_config(backend, config)) as params:
            self.params = params
            optimizer = torch.optim.AdamW(
                params.values(),
                lr=config.learning_rate,
                betas=config.adam_betas,
                weight_decay=config.weight_decay,
                eps=config.adam_epsilon,
            )
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupThenConstant(config.lr_warmup_steps))
            # Not accelerator.prepare(scheduler): its wrapper steps once per process; ours counts optimizer steps.
            self.optimizer = accelerator.prepare(optimizer)
            accelerator.register_for_checkpointing(self.scheduler)
            start = 0
            if checkpoint is not None:
                load_checkpoint(accelerator, checkpoint, params)
                start = state["step"]
                log.info("%s: resuming at step %d of %d from %s", self.paths.skill, start, config.steps, checkpoint)
            self.step = start
            self.train_log.restart(start)
            if start == 0:
                if accelerator.is_main_process:  # a fresh run: previews of a run it replaces would mislead
                    shutil.rmtree(self.paths.previews, ignore_errors=True)
                self._previews(0)  # the base model's images, to compare against
            self._loop(start)
            final = self._save_checkpoint(finished=True)
            expert = self._write_expert()
        return self._result(self.step, start, started, final, expert)

    def _loop(self, start: int) -> None:
        config = self.config
        for step in range(start, config.steps):
            began = time.perf_counter()
            try:
                loss, grad_norm, lr = self._optimizer_step(step)
            except NonFiniteLoss:
                self._write_log_and_curve()
                raise
            self.step = step + 1
            self.train_log.add(
                {
                    "step": self.step,
                    "loss": loss,
                    "lr": lr,
                    "grad_norm": grad_norm,
                    "seconds": round(time.perf_counter() - began, 4),
                }
            )
            if config.save_every and self.step % config.save_every == 0 and self.step < config.steps:
                self._save_checkpoint(finished=False)
            if config.preview_every and self.step % config.preview_every == 0:
                self._previews(self.step)
            if self.on_step is not None:
                try:
                    self.on_step(self.step, config.steps, loss)
                except BaseException:
                    # A Cancel: keep everything up to this step, so the next run resumes exactly here.
                    if self.last_saved_step != self.step:
                        self._save_checkpoint(finished=False)
                    raise

    def _optimizer_step(self, step: int) -> tuple[float, float, float]:
        """One optimizer step of `grad_accum` micro-batches; returns (their mean loss, grad norm, lr used)."""
        accelerator, backend, data, sampler = self.accelerator, self.backend, self.data, self.sampler
        losses = []
        for micro in range(self.config.grad_accum):
            with accelerator.accumulate():
                indices = sampler.indices(step, micro)
                latents = data.latents(backend, indices)
                conditioning = data.conditioning(backend, indices)
                if getattr(backend, "wants_time_ids", False):  # SDXL: each image's size and crop
                    conditioning = {**conditioning, "time_ids": data.time_ids(indices).to(backend.device)}
                noise, timesteps = sampler.noise_and_timesteps(step, micro, latents.shape[1:], backend)
                noisy = backend.add_noise(latents, noise, timesteps)
                target = backend.target(latents, noise, timesteps)
                with accelerator.autocast():
                    prediction = backend.predict(noisy, timesteps, conditioning)
                loss = F.mse_loss(prediction.float(), target.float())
                accelerator.backward(loss)
                losses.append(loss.detach())
        if not accelerator.sync_gradients:  # cannot happen while micro-batches are counted as above
            raise RuntimeError("gradient accumulation went out of step with the accelerator; please report this")
        step_loss = accelerator.reduce(torch.stack(losses).mean(), reduction="mean").item()
        if not math.isfinite(step_loss):
            raise NonFiniteLoss(self._non_finite_message(step + 1, f"the loss became {step_loss}"), step + 1)
        params = list(self.params.values())
        if accelerator.num_processes > 1:
            average_gradients(accelerator, params)
        grad_norm = accelerator.clip_grad_norm_(params, self.config.max_grad_norm or math.inf)
        grad_norm = float(grad_norm)
        # fp16's loss scaler skips steps with inf gradients on purpose (and lowers its scale); elsewhere it is fatal.
        if not math.isfinite(grad_norm) and self.mixed_precision != "fp16":
            raise NonFiniteLoss(self._non_finite_message(step + 1, f"the gradient norm became {grad_norm}"), step + 1)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        if not accelerator.optimizer_step_was_skipped:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return step_loss, grad_norm, lr
