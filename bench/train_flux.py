"""Benchmark: one FLUX training step, our trainer against a plain diffusers + peft flow-matching loop, in one run.

    python bench/train_flux.py                  # the FLUX-shaped model below, 128 px, 1 thread per worker
    python bench/train_flux.py --threads 2

The model is FluxTransformer2DModel with FLUX.1-dev's block structure and head size (128, rope axes 16/56/56,
guidance embedding) scaled down to fit 2 CPU cores: 3 heads (width 384), 2 double + 4 single blocks, T5 width 384;
the VAE is 8x with 16 latent channels, so a 128 px image is 16x16 latents, 64 image tokens, plus 64 text tokens.
Setting: LoRA rank 16 (alpha 16, gaussian) on to_q/to_k/to_v/to_out.0 (both block kinds), batch 1, fp32, AdamW,
clip 1.0; latents and text embeddings are computed once before the timed steps in both loops (the reference as
diffusers' train_dreambooth_lora_flux.py does with --cache_latents and a fixed prompt per image).
- reference: diffusers' loop as that script writes it: logit-normal u, the scheduler's timestep at u * 1000,
  x_t = (1 - s) x0 + s n, `FluxPipeline._pack_latents`, image/text ids, guidance 3.5, transformer(t / 1000),
  `_unpack_latents`, MSE to n - x0, backward, clip_grad_norm_, AdamW step; `transformer.add_adapter(LoraConfig)`;
- ours: `train_expert(FlowMatchingBackend(pipe), ...)` with the default caches.
Step time is the median after `--warmup` steps (ours: the train log's `seconds`, timed inside the loop around the
optimizer step; the reference: around the same work). Each loop runs in its own process on the same model (seed).
"""

from __future__ import annotations

import argparse
import json
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
RANK, RESOLUTION, TEXT_TOKENS = 16, 128, 64


def build_pipeline():
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    from selma.testing.tiny_dit import FLUX_SCHEDULER
    from selma.testing.tiny_models import (
        _clip_text_config,
        _word_list,
        build_tiny_clip_tokenizer,
        byte_level_tokenizer,
    )

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,
        num_layers=2,
        num_single_layers=4,
        attention_head_dim=128,
        num_attention_heads=3,
        joint_attention_dim=384,
        pooled_projection_dim=32,
        guidance_embeds=True,
        axes_dims_rope=(16, 56, 56),
    )
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 16, 32, 32),
        norm_num_groups=8,
        latent_channels=16,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    tokenizer = build_tiny_clip_tokenizer()
    text_encoder = CLIPTextModel(_clip_text_config(tokenizer, hidden_act="quick_gelu")).eval()
    tokenizer_2 = byte_level_tokenizer(_word_list(), [], max_length=512)
    t5 = T5Config(vocab_size=len(tokenizer_2), d_model=384, d_kv=64, d_ff=768, num_layers=1, num_heads=6)
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=T5EncoderModel(t5).eval(),
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def write_dataset(folder: Path, images: int) -> None:
    from PIL import Image

    from selma.datasets.files import DatasetWriter

    writer = DatasetWriter(folder)
    for index in range(images):
        colour = (40 * index % 256, 255 - 30 * index % 256, 90)
        writer.add(Image.new("RGB", (RESOLUTION, RESOLUTION), colour), f"a picture of colour {index}", index)


def reference_loop(pipe, dataset: Path, steps: int) -> list[float]:
    import numpy as np
    import torch.nn.functional as F
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.training_utils import compute_density_for_timestep_sampling
    from peft import LoraConfig
    from PIL import Image

    from selma.datasets.files import read_dataset

    records = read_dataset(dataset)
    transformer, vae = pipe.transformer, pipe.vae
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    for module in (transformer, vae, pipe.text_encoder, pipe.text_encoder_2):
        module.requires_grad_(False)
    cache = []
    with torch.no_grad():
        for record_ in records:
            image = Image.open(dataset / record_.file_name).convert("RGB")
            pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
            latents = (vae.encode(pixels).latent_dist.mode() - vae.config.shift_factor) * vae.config.scaling_factor
            embeds, pooled, text_ids = pipe.encode_prompt(record_.text, None, max_sequence_length=TEXT_TOKENS)
            cache.append((latents, embeds, pooled, text_ids))
    transformer.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, init_lora_weights="gaussian", target_modules=TARGETS))
    transformer.train()
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    seconds = []
    for step in range(steps):
        began = time.perf_counter()
        latents, embeds, pooled, text_ids = cache[step % len(cache)]
        batch, channels, height, width = latents.shape
        ids = image_ids(pipe, batch, height, width)
        noise = torch.randn_like(latents)
        u = compute_density_for_timestep_sampling("logit_normal", batch, logit_mean=0.0, logit_std=1.0)
        timesteps = scheduler.timesteps[(u * scheduler.config.num_train_timesteps).long()]
        sigmas = (timesteps / scheduler.config.num_train_timesteps).view(-1, 1, 1, 1)
        noisy = (1.0 - sigmas) * latents + sigmas * noise
        packed = pipe._pack_latents(noisy, batch, channels, height, width)
        prediction = transformer(
            hidden_states=packed,
            timestep=timesteps / 1000,
            guidance=torch.full((batch,), 3.5),
            pooled_projections=pooled,
            encoder_hidden_states=embeds,
            txt_ids=text_ids,
            img_ids=ids,
            return_dict=False,
        )[0]
        prediction = pipe._unpack_latents(prediction, height * scale, width * scale, scale)
        loss = F.mse_loss(prediction.float(), (noise - latents).float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        seconds.append(time.perf_counter() - began)
    return seconds


def image_ids(pipe, batch: int, height: int, width: int) -> torch.Tensor:
    return pipe._prepare_latent_image_ids(batch, height // 2, width // 2, "cpu", torch.float32)


def our_loop(pipe, dataset: Path, steps: int, out: Path) -> list[float]:
    from selma.training import TrainConfig, train_expert
    from selma.training.dit_backend import FlowMatchingBackend

    backend = FlowMatchingBackend(pipe, device="cpu", max_sequence_length=TEXT_TOKENS)
    config = TrainConfig(
        rank=RANK,
        alpha=RANK,
        batch_size=1,
        grad_accum=1,
        steps=steps,
        save_every=0,
        resolution=RESOLUTION,
        learning_rate=1e-4,
        mixed_precision="no",
    )
    result = train_expert(backend, dataset, out, config, skill="bench", resume=False)
    return [json.loads(line)["seconds"] for line in result.log_path.read_text().splitlines()]


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    pipe = build_pipeline()
    steps = args.warmup + args.steps
    if args.worker == "reference":
        seconds = reference_loop(pipe, Path(args.dataset), steps)
    else:
        seconds = our_loop(pipe, Path(args.dataset), steps, Path(args.out).parent / "ours")
    Path(args.out).write_text(json.dumps({"seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="timed steps (default 12)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    parser.add_argument("--worker", choices=("reference", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory(prefix="selma-bench-flux-") as tmp:
        dataset = Path(tmp) / "dataset"
        write_dataset(dataset, 4)
        stats = {}
        for variant in ("reference", "ours"):
            out = Path(tmp) / f"{variant}.json"
            command = [sys.executable, __file__, "--worker", variant, "--dataset", str(dataset), "--out", str(out)]
            command += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
            subprocess.run(command, check=True)
            stats[variant] = statistics.median(json.loads(out.read_text())["seconds"][args.warmup :])
    print(f"FLUX-shaped transformer (width 384, 2+4 blocks), {RESOLUTION} px, LoRA r={RANK}, {args.threads} thread(s)")
    print(f"reference (diffusers + peft flow-matching loop): {stats['reference']:.3f} s/step")
    print(f"ours (train_expert, FlowMatchingBackend):        {stats['ours']:.3f} s/step")
    ratio = stats["ours"] / stats["reference"]
    print(f"ratio ours / reference: {ratio:.3f} (goal <= 1.05)")
    record(
        "train_flux",
        f"one FLUX LoRA training step, FLUX-shaped transformer (width 384, 2+4 blocks), {RESOLUTION} px, cached",
        "diffusers + peft flow-matching loop",
        stats["reference"],
        "train_expert + FlowMatchingBackend",
        stats["ours"],
        "s",
        goal="<= 1.05",
    )


if __name__ == "__main__":
    main()
