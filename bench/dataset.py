"""Benchmark: dataset rendering (`build_dataset`), batched against one prompt at a time, in the same run.

    python bench/dataset.py                 # tiny SD at 32 px: 32 prompts, batch 8 vs batch 1
    python bench/dataset.py --sd15          # also an SD1.5-size pipeline (random weights) at 64 px
    python bench/dataset.py --threads 1     # pin torch's CPU threads (a shared machine is noisy)

Each configuration renders the same prompts into a fresh folder (PNG files and metadata included) after
one warm-up render, and prints images per second, the speed-up of batching over the one-at-a-time anchor,
and the peak resident memory of the process and above its memory before that configuration ran (sampled
every 5 ms). The SD1.5-size pipeline is SD1.5's UNet, CLIP ViT-L text encoder and VAE configs with random
weights (no download): 64 px images, 8 x 8 latents.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: `bench` and `selma` importable

import psutil  # noqa: E402  (a dependency of accelerate)
import torch  # noqa: E402

from bench.record import record  # noqa: E402
from selma.datasets.rendering import DatasetConfig, build_dataset  # noqa: E402
from selma.testing.tiny_models import build_sd15_unet, build_tiny_clip_tokenizer, build_tiny_sd  # noqa: E402

SUBJECTS = ["cat", "dog", "red apple", "blue cup", "robot", "kite", "teddy bear", "bicycle"]
PLACES = ["on a table", "in the snow", "next to a tree", "under a lamp"]


def prompts(count: int) -> list[str]:
    """Distinct short prompts: a count, a subject, a place."""
    return [f"{1 + i % 3} {SUBJECTS[i % 8]} {PLACES[i // 8 % 4]}" for i in range(count)]


class PeakMemory:
    """Peak RSS (bytes) of the process, and above the RSS at entry, sampled by a thread."""

    def __init__(self, interval: float = 0.005) -> None:
        self.process, self.interval = psutil.Process(), interval
        self.peak = self.total = 0

    def __enter__(self) -> PeakMemory:
        self.base = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.total = max(self.total, self.process.memory_info().rss)
            self.peak = self.total - self.base
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()


def sd15_size_pipeline():
    """SD1.5's UNet, CLIP ViT-L/14 text encoder and VAE at their real sizes, random weights, offline."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = build_tiny_clip_tokenizer()  # the vocabulary size does not change the cost that matters
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=CLIPTextModel(text_config).eval(),
        tokenizer=tokenizer,
        unet=build_sd15_unet(device="cpu"),
        scheduler=DDIMScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False, steps_offset=1
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def measure(name: str, pipe, texts: list[str], size: int, steps: int, batch_sizes: list[int]) -> None:
    pipe.set_progress_bar_config(disable=True)
    base = DatasetConfig(steps=steps, width=size, height=size)
    with tempfile.TemporaryDirectory(prefix="selma-bench-") as tmp:
        build_dataset("warmup", pipe, Path(tmp) / "warmup", texts[:1], base)  # first-call costs out of the anchor
        anchor = None
        print(f"\n{name}: {len(texts)} prompts, {size} px, {steps} steps")
        print("  batch   seconds   images/s  vs batch 1  peak RSS MiB (+ over start)")
        for batch_size in batch_sizes:
            config = DatasetConfig(**{**vars(base), "batch_size": batch_size})
            with PeakMemory() as memory:
                start = time.perf_counter()
                result = build_dataset("bench", pipe, Path(tmp) / f"b{batch_size}", texts, config)
                seconds = time.perf_counter() - start
            assert result.rendered == len(texts)
            rate = len(texts) / seconds
            if anchor is not None:
                work = f"render a dataset, {name}, {len(texts)} prompts, {size} px, {steps} steps: images/s"
                record("dataset", work, "one prompt at a time", anchor, f"batch {batch_size}", rate, "images/s")
            anchor = anchor or rate
            print(
                f"  {batch_size:5d}  {seconds:8.2f}  {rate:9.2f}  {rate / anchor:9.2f}x  "
                f"{memory.total / 2**20:18.0f} (+{memory.peak / 2**20:5.0f})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=32, help="prompts for the tiny model (default 32)")
    parser.add_argument("--batch-size", type=int, default=8, help="the batched configuration (default 8)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--sd15", action="store_true", help="also an SD1.5-size pipeline at 64 px (slow on CPU)")
    parser.add_argument("--sd15-prompts", type=int, default=16)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; build_dataset writes PNG + metadata")
    measure("tiny SD", build_tiny_sd(sample_size=32), prompts(args.prompts), 32, args.steps, [1, args.batch_size])
    if args.sd15:
        pipe = sd15_size_pipeline()
        params = sum(p.numel() for p in pipe.unet.parameters()) / 1e6
        measure(f"SD1.5-size (UNet {params:.0f}M params)", pipe, prompts(args.sd15_prompts), 64, args.steps, [1, 8])


if __name__ == "__main__":
    main()
