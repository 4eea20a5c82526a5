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
"""

from __future__ import annotations

import gc
import logging
import math
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import __version__
from ..experts.lora_expert import LoraExpert
from ..experts.style_inject_files import StyleInjectExpert
from .adapter import ADAPTER_NAME, check_target_modules, injected_adapter, style_inject_config
from .backend import DenoiserBackend, ExpertExporter, StyleInjectExporter
from .checkpoint import find_checkpoint, load_checkpoint, read_checkpoint_state, save_checkpoint
from .config import TrainConfig
from .data import StepSampler, TrainingData
from .errors import CheckpointMismatch, NonFiniteLoss, TrainingBusy, TrainingOutOfMemory
from .previews import save_previews
from .train_log import TrainLog, draw_loss_curve

log = logging.getLogger(__name__)

StepFn = Callable[[int, int, float], None]
_SKILL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_FINAL_LOSS_WINDOW = 50


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


@dataclass
class TrainResult:
    """What a training call left behind. `expert` is the trained expert in memory (also in `expert_path`)."""

    skill: str
    expert_path: Path
    work_dir: Path
    steps: int
    total_steps: int
    resumed_from: int
    final_loss: float | None
    seconds: float
    log_path: Path
    loss_curve_path: Path
    checkpoint_path: Path | None
    preview_paths: list[Path] = field(default_factory=list)
    expert: LoraExpert | StyleInjectExpert | None = None

    def summary(self) -> str:
        loss = f"{self.final_loss:.4f}" if self.final_loss is not None else "n/a"
        start = f" (resumed at {self.resumed_from})" if self.resumed_from else ""
        return (
            f"{self.skill}: {self.steps}/{self.total_steps} steps{start} in {self.seconds:.0f} s, "
            f"final loss {loss} -> {self.expert_path}"
        )


def train_expert(
    backend: DenoiserBackend,
    dataset_dir: str | Path,
    out_dir: str | Path,
    config: TrainConfig,
    *,
    skill: str,
    on_step: StepFn | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train the expert of `skill` (LoRA or StyleInject: `config.method`) on `dataset_dir`; write
    `out_dir/<skill>.safetensors` (+ its work folder).

    `on_step(step, total, loss)` is called after every optimizer step; if it raises (a Cancel), a checkpoint
    of that step is saved and the exception re-raised, so the next call resumes there. With `resume` (the
    default) a checkpoint in the work folder is continued, and a finished run returns at once. Inputs are
    checked before anything is written; on NaN loss or out-of-memory the last good checkpoint stays.
    """
    if not isinstance(skill, str) or not _SKILL_RE.match(skill):
        raise ValueError(f"skill={skill!r} is not a valid name; use letters, digits, '_', '-' or '.' (max 64)")
    data = TrainingData.from_folder(dataset_dir, config.resolution)
    check_target_modules(backend.module, config.target_modules)
    if config.batch_size > len(data):
        log.warning(
            "batch_size=%d is larger than the %d examples of %s: each batch repeats examples",
            config.batch_size,
            len(data),
            dataset_dir,
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


def _make_accelerator(config: TrainConfig, device: torch.device):
    from accelerate import Accelerator, PartialState
    from accelerate.state import AcceleratorState, GradientState

    kwargs = {
        "mixed_precision": config.resolved_mixed_precision(device.type),
        "gradient_accumulation_steps": config.grad_accum,
        "cpu": device.type == "cpu",
    }
    try:
        return Accelerator(**kwargs)
    except ValueError as e:
        # Accelerate keeps one global state per process and refuses another precision; a single-process host
        # (ComfyUI, a notebook) training twice with different settings is fine to reset. Under `accelerate
        # launch` the state belongs to the launcher: keep its error.
        if "already been initialized" not in str(e) or PartialState().num_processes > 1:
            raise
        AcceleratorState._reset_state()
        GradientState._reset_state()
        return Accelerator(**kwargs)


class _ExpertTrainer:
    """One call of `train_expert`: holds the run's state so each stage reads as one short method."""

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
        self.accelerator = accelerator = _make_accelerator(config, self.backend.device)
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
                lock.release()

    def _train(self, checkpoint: Path | None, state: dict | None, started: float) -> TrainResult:
        config, backend, accelerator = self.config, self.backend, self.accelerator
        if config.cache_latents or config.cache_text:
            self.data.build_caches(
                backend, latents=config.cache_latents, text=config.cache_text, batch_size=config.batch_size
            )
        if config.gradient_checkpointing:
            backend.enable_gradient_checkpointing()
        self.sampler = StepSampler(
            len(self.data),
            config.batch_size,
            config.grad_accum,
            config.seed,
            world_size=accelerator.num_processes,
            rank=accelerator.process_index,
        )
        with injected_adapter(backend.module, config) as params:
            self.params = params
            optimizer = torch.optim.AdamW(
                params.values(),
                lr=config.learning_rate,
                betas=config.adam_betas,
                weight_decay=config.weight_decay,
                eps=config.adam_epsilon,
            )
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _WarmupThenConstant(config.lr_warmup_steps))
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
            _average_gradients(accelerator, params)
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

    # ------------------------------------------------------------------ files
    def _claim_work_dir(self):
        """The main process locks the work folder: two runs of one skill into one folder would corrupt it."""
        if not self.accelerator.is_main_process:
            return None
        from filelock import FileLock, Timeout

        self.paths.work.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.paths.work / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise TrainingBusy(
                f"another process is training {self.paths.skill!r} in {self.paths.work}; wait for it to finish, "
                "or train into another run directory"
            ) from None
        return lock

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
        from ..experts.style_inject_files import save_style_inject_expert, style_inject_expert_from_model

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
        return {
            "method": self.config.method,
            "skill": self.paths.skill,
            "base_model": self.fingerprint,
            "steps": self.step,
            "config": self.config.to_json(),
            "dataset": {"path": str(self.data.folder), "examples": len(self.data)},
            "final_loss": self._final_loss(),
            "world_size": self.accelerator.num_processes,
        }

    def _final_loss(self) -> float | None:
        losses = [r["loss"] for r in self.train_log.records()[-_FINAL_LOSS_WINDOW:]]
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

    # ------------------------------------------------------------------ checks and messages
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


class _WarmupThenConstant:
    """LR factor: linear from 1/(warmup+1) to 1 over `warmup` steps, then 1 (a class, so it pickles for resume)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup

    def __call__(self, step: int) -> float:
        return min(1.0, (step + 1) / (self.warmup + 1)) if self.warmup else 1.0


def _average_gradients(accelerator, params: list[torch.nn.Parameter]) -> None:
    """Average the adapter gradients across processes with one flat all-reduce."""
    grads = [p.grad for p in params]
    flat = accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
