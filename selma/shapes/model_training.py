"""Train the shapes model from scratch on renderer data (used by `tools/train_shapes_model.py`).

Two phases, both seeded:

1. **The VAE** on freshly drawn scenes (L1 + MSE reconstruction, KL weight 1e-6 as SD's VAE), then the latent
   scale (`scaling_factor` = 1 / std of the dataset's latents, as SD computed its 0.18215).
2. **The UNet and the text encoder together** (epsilon prediction, SD1.5's noise schedule) on a fixed dataset
   of `dataset_size` scenes whose latents are encoded once. The captions leave the compositional skills weak on
   purpose: most scenes hold one object (`OBJECT_COUNTS`), and a relation is said in a quarter of the captions
   that could say one, so counting, spatial relations and colour binding have room to improve. 10% of the
   captions are dropped (empty text) so classifier-free guidance works. An EMA of both (decay 0.999) is what
   is saved.

State is checkpointed under `work_dir` every `save_every` steps (atomically), and a rerun resumes where it
stopped; the final model is written as a diffusers folder in float16 (half the bytes; loading upcasts).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic_files import write_text_atomic
from . import model as shapes_model
from .world import random_scene, render, scene_for_prompt, spec_of

OBJECT_COUNTS = {1: 0.75, 2: 0.18, 3: 0.05, 4: 0.02}  # share of training scenes with each number of objects
P_RELATION = 0.25
P_DROP_CAPTION = 0.1


@dataclass
class TrainingPlan:
    seed: int = 0
    vae_steps: int = 700
    vae_batch: int = 16
    vae_lr: float = 1e-3
    dataset_size: int = 24000
    unet_steps: int = 6000
    unet_batch: int = 32
    unet_lr: float = 3e-4
    warmup: int = 200
    ema_decay: float = 0.999
    save_every: int = 250
    max_minutes: float = 0.0  # stop the UNet phase after this long (0: no limit); a rerun goes on


def draw_scene(rng: random.Random):
    counts, weights = zip(*OBJECT_COUNTS.items(), strict=True)
    n = rng.choices(counts, weights)[0]
    return random_scene(rng, min_objects=n, max_objects=n)


def training_example(rng: random.Random) -> tuple[np.ndarray, str]:
    """One renderer picture (64 x 64 x 3, -1..1) and its caption (true of the picture, weak on composition)."""
    scene = draw_scene(rng)
    text, _ = scene_for_prompt(spec_of(scene, rng, p_relation=P_RELATION), rng)
    pixels = np.asarray(render(scene, shapes_model.RESOLUTION), dtype=np.float32) / 127.5 - 1.0
    return pixels, text


def _to_tensor(pictures: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).contiguous()


def _lr(step: int, plan: TrainingPlan, base: float) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    if step < plan.warmup:
        return base * (step + 1) / plan.warmup
    progress = min(1.0, (step - plan.warmup) / max(1, plan.unet_steps - plan.warmup))
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _save_torch(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def train_vae(pipe, plan: TrainingPlan, work: Path, log) -> list[float]:
    """Phase 1; returns the loss curve. Resumes from work/vae.pt when it holds the finished phase."""
    done = work / "vae.pt"
    if done.is_file():
        state = torch.load(done, weights_only=False)
        pipe.vae.load_state_dict(state["weights"])
        pipe.vae.register_to_config(scaling_factor=state["scaling_factor"])
        log(f"VAE: resumed the finished phase from {done}")
        return state["losses"]
    rng, vae = random.Random(plan.seed * 7 + 1), pipe.vae
    vae.train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=plan.vae_lr, weight_decay=0.0)
    losses, start = [], time.time()
    for step in range(plan.vae_steps):
        for group in optimizer.param_groups:
            group["lr"] = plan.vae_lr * min(1.0, (step + 1) / 50) * (0.1 if step > 0.8 * plan.vae_steps else 1.0)
        images = _to_tensor([training_example(rng)[0] for _ in range(plan.vae_batch)])
        posterior = vae.encode(images).latent_dist
        decoded = vae.decode(posterior.sample()).sample
        loss = (decoded - images).abs().mean() + (decoded - images).pow(2).mean() + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
        if step % 50 == 0 or step == plan.vae_steps - 1:
            log(
                f"VAE step {step + 1}/{plan.vae_steps}: loss {np.mean(losses[-50:]):.4f} ({time.time() - start:.0f} s)"
            )
    vae.eval()
    return losses


def encode_dataset(pipe, plan: TrainingPlan, work: Path, log) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The fixed dataset: latent means and stds (N x 4 x 16 x 16 each) and captions; cached in work/dataset.pt."""
    cached = work / "dataset.pt"
    if cached.is_file():
        data = torch.load(cached, weights_only=False)
        return data["mean"], data["std"], data["captions"]
    rng, means, stds, captions = random.Random(plan.seed * 7 + 2), [], [], []
    with torch.no_grad():
        for start in range(0, plan.dataset_size, 128):
            batch = [training_example(rng) for _ in range(min(128, plan.dataset_size - start))]
            posterior = pipe.vae.encode(_to_tensor([p for p, _ in batch])).latent_dist
            means.append(posterior.mean)
            stds.append(posterior.std)
            captions += [c for _, c in batch]
    mean, std = torch.cat(means), torch.cat(stds)
    log(f"dataset: {len(captions)} pictures encoded; latent std {float(mean.std()):.4f}")
    _save_torch({"mean": mean, "std": std, "captions": captions}, cached)
    return mean, std, captions


def _tokens(pipe, captions: list[str]) -> torch.Tensor:
    return pipe.tokenizer(
        captions,
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def train_denoiser(pipe, plan: TrainingPlan, work: Path, log) -> list[float]:
    """Phase 2; returns the loss curve (one mean per step). Checkpoints to work/denoiser.pt."""
    from diffusers import DDPMScheduler

    mean, std, captions = encode_dataset(pipe, plan, work, log)
    scale = pipe.vae.config.scaling_factor
    ids, empty = _tokens(pipe, captions), _tokens(pipe, [""])[0]
    unet, text_encoder = pipe.unet, pipe.text_encoder
    params = [*unet.parameters(), *text_encoder.parameters()]
    ema = [p.detach().clone() for p in params]
    optimizer = torch.optim.AdamW(params, lr=plan.unet_lr, weight_decay=1e-2)
    noise_schedule = DDPMScheduler(**shapes_model.scheduler_config())
    step, losses, elapsed = 0, [], 0.0
    checkpoint = work / "denoiser.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        ema = state["ema"]
        step, losses, elapsed = state["step"], state["losses"], state["elapsed"]
        torch.set_rng_state(state["torch_rng"])
        log(f"denoiser: resumed at step {step}")
    else:
        torch.manual_seed(plan.seed * 7 + 3)
    unet.train()
    text_encoder.train()
    started = time.time() - elapsed

    def save() -> None:
        _save_torch(
            {"unet": unet.state_dict(), "text_encoder": text_encoder.state_dict(), "optimizer": optimizer.state_dict(),
             "ema": ema, "step": step, "losses": losses, "elapsed": time.time() - started,
             "torch_rng": torch.get_rng_state()},
            checkpoint,
        )  # fmt: skip

    session_start = time.time()
    while step < plan.unet_steps:
        if plan.max_minutes and time.time() - session_start > plan.max_minutes * 60:
            save()
            log(f"denoiser: stopped at step {step} after {plan.max_minutes} min; rerun to go on")
            break
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, plan, plan.unet_lr)
        index = torch.randint(0, len(captions), (plan.unet_batch,))
        latents = (mean[index] + std[index] * torch.randn_like(mean[index])) * scale
        tokens = ids[index].clone()
        tokens[torch.rand(plan.unet_batch) < P_DROP_CAPTION] = empty
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, noise_schedule.config.num_train_timesteps, (plan.unet_batch,))
        noisy = noise_schedule.add_noise(latents, noise, timesteps)
        context = text_encoder(tokens).last_hidden_state
        loss = torch.nn.functional.mse_loss(unet(noisy, timesteps, context).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], 1 - min(plan.ema_decay, (1 + step) / (10 + step)))
        losses.append(float(loss))
        step += 1
        if step % 50 == 0:
            log(f"denoiser step {step}/{plan.unet_steps}: loss {np.mean(losses[-50:]):.4f} "
                f"({time.time() - started:.0f} s)")  # fmt: skip
        if step % plan.save_every == 0 or step == plan.unet_steps:
            save()
    with torch.no_grad():
        for p, e in zip(params, ema, strict=True):
            p.copy_(e)
    unet.eval()
    text_encoder.eval()
    return losses


def _curve(losses: list[float], points: int = 60) -> list[list[float]]:
    """The loss curve as (step, mean loss over the window) pairs, `points` of them."""
    window = max(1, len(losses) // points)
    return [[i + window, round(float(np.mean(losses[i : i + window])), 5)] for i in range(0, len(losses), window)]


def train_shapes_model(out_dir: Path, work_dir: Path, plan: TrainingPlan, log=print) -> dict:
    """Both phases, then the model written to `out_dir` (a diffusers folder, float16) with its training report.
    Returns the report; when the UNet phase stopped on `max_minutes`, nothing is written and the report says so."""
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(plan.seed)
    pipe = shapes_model.build_untrained_pipeline(plan.seed)
    threads = torch.get_num_threads()
    start = time.time()
    vae_losses = train_vae(pipe, plan, work_dir, log)
    if not (work_dir / "vae.pt").is_file():
        with torch.no_grad():
            mean, _, _ = encode_dataset(pipe, plan, work_dir, log)  # encoded once at scale 1
        scaling = float(1.0 / mean.std())
        pipe.vae.register_to_config(scaling_factor=scaling)
        _save_torch({"weights": pipe.vae.state_dict(), "scaling_factor": scaling, "losses": vae_losses,
                     "seconds": time.time() - start}, work_dir / "vae.pt")  # fmt: skip
    vae_seconds = torch.load(work_dir / "vae.pt", weights_only=False)["seconds"]
    losses = train_denoiser(pipe, plan, work_dir, log)
    denoiser_seconds = torch.load(work_dir / "denoiser.pt", weights_only=False)["elapsed"]
    if len(losses) < plan.unet_steps:
        return {"finished": False, "steps": len(losses)}
    report = {
        "finished": True,
        "plan": asdict(plan),
        "data": {
            "object_counts": OBJECT_COUNTS,
            "p_relation": P_RELATION,
            "p_drop_caption": P_DROP_CAPTION,
            "resolution": shapes_model.RESOLUTION,
            "renderer": "selma.shapes.world.render",
        },  # fmt: skip
        "parameters": {
            n: sum(p.numel() for p in getattr(pipe, n).parameters()) for n in ("unet", "vae", "text_encoder")
        },
        "vae_scaling_factor": pipe.vae.config.scaling_factor,
        "seconds": {"vae_and_dataset": round(vae_seconds), "denoiser": round(denoiser_seconds)},
        "torch_threads": threads,
        "torch": torch.__version__,
        "vae_loss_curve": _curve(vae_losses),
        "denoiser_loss_curve": _curve(losses),
    }
    staging = out_dir.with_name(out_dir.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    pipe.to(torch.float16).save_pretrained(staging, safe_serialization=True)
    write_text_atomic(staging / shapes_model.REPORT_NAME, json.dumps(report, indent=1) + "\n")
    write_text_atomic(staging / "fingerprint.json", json.dumps(shapes_model.fingerprint(staging), indent=1) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.replace(out_dir)
    log(f"wrote {out_dir} ({sum(f.stat().st_size for f in out_dir.rglob('*') if f.is_file()) / 1e6:.1f} MB)")
    return report
