"""Benchmark: our trainer's step time against a plain diffusers + peft loop, on the same model and batch, in one run.

    python bench/train.py           # smoke run: the tiny SD pipeline, 32 px
    python bench/train.py --sd15    # a random SD1.5-size UNet (860M parameters) at 64 px

Setting (as in issue 4): LoRA rank 4 (alpha 4, gaussian) on to_q/to_k/to_v/to_out.0, batch 1, fp32, AdamW,
clip 1.0, one optimizer step per batch. With --sd15 the UNet is SD1.5's (`build_sd15_unet`, random weights,
64x64 images -> 8x8 latents); the VAE is a tiny one with SD's scale factor 8 and the text encoder a 2-layer
CLIPTextModel of width 768 (SD1.5's cross-attention width) over the tiny tokenizer: only the UNet's cost
matters, and a real VAE/CLIP would only add the same encoding cost to the uncached loops.

Each variant runs in a fresh subprocess that builds the same pipeline (same seed) and trains on the same
dataset folder (N solid-colour images with captions):
- reference: the textbook loop (diffusers' train_text_to_image_lora.py, no Accelerate): decode + resize the
  image, vae.encode().latent_dist.sample(), tokenize + text_encoder, noise, timesteps, add_noise, unet, MSE,
  backward, clip_grad_norm_, AdamW step; the adapter added with `unet.add_adapter(LoraConfig(...))`;
- ours, uncached: `train_expert(...)` with cache_latents=cache_text=False (the same work per step);
- ours, cached: `train_expert(...)` with the defaults (latents and text embeddings encoded once);
- each of the three again with gradient checkpointing (reference: `unet.enable_gradient_checkpointing()`; ours:
  `TrainConfig(gradient_checkpointing=True)`), where activations are recomputed in the backward pass.
Step time is the median over the timed steps after `--warmup` steps (ours: the `seconds` of each train-log
line, timed around the optimizer step inside the loop; reference: timed around the same work). An epoch is
N steps (batch 1); the cached epoch is also shown with the one-off cache build added.
Peak memory is each worker's RSS high-water mark (`resource.getrusage(RUSAGE_SELF).ru_maxrss`, the kernel's
VmHWM, so nothing is missed between samples) and, beside it, what training added over the RSS measured with
psutil once the pipeline was built (imports + model weights).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: `bench` and `selma` importable

import torch  # noqa: E402

from bench.record import record  # noqa: E402

TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
RANK = 4
VARIANTS = ("reference", "uncached", "cached", "reference+gc", "uncached+gc", "cached+gc")
LABELS = {
    "reference": "diffusers + peft textbook loop",
    "uncached": "ours, no caching (same work)",
    "cached": "ours, cached latents + text",
}
LABELS |= {f"{variant}+gc": f"{label}, grad. checkpointing" for variant, label in LABELS.items()}
COLOURS = [(230, 20, 20), (20, 200, 40), (30, 40, 220), (240, 230, 30), (240, 240, 240), (20, 20, 20)]


def build_pipeline(sd15: bool):
    """The tiny SD pipeline, or an SD1.5-size UNet with a tiny factor-8 VAE and a width-768 text encoder."""
    from selma.testing.tiny_models import build_tiny_sd

    if not sd15:
        return build_tiny_sd(seed=0)
    from diffusers import AutoencoderKL, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    from selma.testing.tiny_models import build_sd15_unet, build_tiny_clip_tokenizer

    tiny = build_tiny_sd(seed=0)  # for its scheduler and tokenizer
    torch.manual_seed(0)
    tokenizer = build_tiny_clip_tokenizer()
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=2,
        num_attention_heads=12,
        max_position_embeddings=77,
        projection_dim=768,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vae = AutoencoderKL(  # four levels: 64 px -> 8x8 latents, SD's factor 8
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        sample_size=64,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text_config).eval(),
        tokenizer=tokenizer,
        unet=build_sd15_unet(device="cpu", seed=0),
        scheduler=tiny.scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def write_dataset(folder: Path, images: int, resolution: int) -> None:
    from PIL import Image

    from selma.datasets.files import DatasetWriter

    writer = DatasetWriter(folder)
    for index in range(images):
        writer.add(Image.new("RGB", (resolution, resolution), COLOURS[index % len(COLOURS)]), f"colour {index}", index)


def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


# ------------------------------------------------------------------ the variants


def reference_loop(pipe, dataset: Path, resolution: int, steps: int, checkpointing: bool) -> list[float]:
    """diffusers' textbook LoRA loop, step by step; returns the seconds of each step."""
    import numpy as np
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from peft import LoraConfig
    from PIL import Image

    from selma.datasets.files import read_dataset

    records = read_dataset(dataset)
    unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, init_lora_weights="gaussian", target_modules=TARGETS))
    if checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=3e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    seconds = []
    for step in range(steps):
        began = time.perf_counter()
        record = records[step % len(records)]
        image = Image.open(dataset / record.file_name).convert("RGB").resize((resolution, resolution))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
        with torch.no_grad():
            latents = vae.encode(pixels).latent_dist.sample() * vae.config.scaling_factor
            ids = tokenizer([record.text], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
            hidden = text_encoder(ids.input_ids)[0]
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (1,))
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        prediction = unet(noisy, timesteps, hidden, return_dict=False)[0]
        loss = F.mse_loss(prediction.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # the textbook loop logs the loss every step
        seconds.append(time.perf_counter() - began)
    return seconds


def our_loop(
    pipe, dataset: Path, resolution: int, steps: int, cached: bool, checkpointing: bool, out: Path
) -> tuple[list[float], float]:
    """`train_expert` on the same model; returns (seconds per step, seconds to build the caches)."""
    from selma.training import DiffusersBackend, TrainConfig, TrainingData, train_expert

    backend = DiffusersBackend(pipe, device="cpu")
    config = TrainConfig(
        rank=RANK,
        alpha=RANK,
        batch_size=1,
        grad_accum=1,
        steps=steps,
        save_every=0,
        resolution=resolution,
        mixed_precision="no",
        cache_latents=cached,
        cache_text=cached,
        gradient_checkpointing=checkpointing,
    )
    cache_seconds = 0.0
    if cached:  # the loop does exactly this once before its first step; timed here on its own
        began = time.perf_counter()
        TrainingData.from_folder(dataset, resolution).build_caches(backend, latents=True, text=True, batch_size=1)
        cache_seconds = time.perf_counter() - began
    result = train_expert(backend, dataset, out, config, skill="bench", resume=False)
    seconds = [json.loads(line)["seconds"] for line in result.log_path.read_text().splitlines()]
    return seconds, cache_seconds


def worker(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = build_pipeline(args.sd15)
    resolution = 64 if args.sd15 else 32
    baseline = rss_bytes()
    steps = args.warmup + args.images
    variant, checkpointing = args.worker.removesuffix("+gc"), args.worker.endswith("+gc")
    if variant == "reference":
        seconds, cache_seconds = reference_loop(pipe, Path(args.dataset), resolution, steps, checkpointing), 0.0
    else:
        out = Path(args.out).parent / args.worker
        seconds, cache_seconds = our_loop(
            pipe, Path(args.dataset), resolution, steps, variant == "cached", checkpointing, out
        )
    stats = {"seconds": seconds, "cache_seconds": cache_seconds, "baseline_rss": baseline}
    Path(args.out).write_text(json.dumps({**stats, "peak_rss": peak_rss_bytes()}))


def run_worker(variant: str, args: argparse.Namespace, dataset: Path, out: Path) -> dict:
    command = [sys.executable, __file__, "--worker", variant, "--dataset", str(dataset), "--out", str(out)]
    command += ["--warmup", str(args.warmup), "--images", str(args.images), "--threads", str(args.threads)]
    command += ["--sd15"] if args.sd15 else []
    subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sd15", action="store_true", help="SD1.5-size random UNet at 64 px (slow on CPU)")
    parser.add_argument("--images", type=int, default=None, help="dataset size = steps per epoch (8; 4 with --sd15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before the epoch (default 2)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads per worker (default: torch's; 1 on a shared machine)"
    )
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.images = args.images or (4 if args.sd15 else 8)
    if args.worker:
        worker(args)
        return
    resolution = 64 if args.sd15 else 32
    model = "random SD1.5-size UNet, 64 px" if args.sd15 else "tiny SD, 32 px"
    threads = args.threads or torch.get_num_threads()
    setting = f"LoRA r={RANK} on {','.join(TARGETS)}; batch 1; fp32"
    print(f"{model}; {setting}; torch {torch.__version__} with {threads} thread(s)")
    print(f"{args.warmup} warmup steps, then one epoch of {args.images} steps; each variant in its own process")
    with tempfile.TemporaryDirectory(prefix="selma-bench-train-") as tmp:
        dataset = Path(tmp) / "dataset"
        write_dataset(dataset, args.images, resolution)
        stats = {v: run_worker(v, args, dataset, Path(tmp) / f"{v}.json") for v in VARIANTS}
    anchor = statistics.median(stats["reference"]["seconds"][args.warmup :])
    print(f"\n{'variant':<60}{'step (median)':>14}{'vs reference':>14}{'epoch':>10}{'peak RSS':>11}{'+training':>11}")
    gib = 2**30
    for variant, label in LABELS.items():
        s = stats[variant]
        timed = s["seconds"][args.warmup :]
        step = statistics.median(timed)
        print(
            f"{label:<60}{step:>12.3f} s{step / anchor:>13.2f}x{sum(timed):>8.2f} s"
            f"{s['peak_rss'] / gib:>8.2f} GiB{(s['peak_rss'] - s['baseline_rss']) / gib:>8.2f} GiB"
        )
    work = f"one LoRA training step, {model}"
    for variant in VARIANTS[1:3]:
        for suffix in ("", "+gc"):
            ours, reference = stats[variant + suffix], stats["reference" + suffix]
            for what, key, unit, scale in (("step time", "seconds", "s", 1), ("peak RSS", "peak_rss", "GiB", gib)):
                theirs = (
                    statistics.median(reference[key][args.warmup :]) if key == "seconds" else reference[key] / scale
                )
                mine = statistics.median(ours[key][args.warmup :]) if key == "seconds" else ours[key] / scale
                goal = "<= 1.1" if key == "seconds" and variant == "uncached" else ""
                label = LABELS["reference" + suffix]
                record("train", f"{work}: {what}", label, theirs, LABELS[variant + suffix], mine, unit, goal=goal)
    cached, uncached = stats["cached"], stats["uncached"]
    cached_epoch = sum(cached["seconds"][args.warmup :])
    uncached_epoch = sum(uncached["seconds"][args.warmup :])
    print(
        f"\nepoch, cached vs uncached: {cached_epoch:.2f} s vs {uncached_epoch:.2f} s = "
        f"{cached_epoch / uncached_epoch:.2f}x (first epoch with the one-off cache build of "
        f"{cached['cache_seconds']:.2f} s: {(cached_epoch + cached['cache_seconds']) / uncached_epoch:.2f}x)"
    )
    print("goal: ours (no caching) within 1.1x of the reference loop")


if __name__ == "__main__":
    main()
