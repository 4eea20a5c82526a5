"""Benchmark: StyleInject's extra cost against an unmerged LoRA's, on SD1.5's adapted layers, forward and backward.

    python bench/styleinject_layers.py           # 8x8 and 64x64 latents, forward and forward+backward
    python bench/styleinject_layers.py --quick   # fewer repeats (a smoke run)

The layers are SD1.5's `to_q` and `to_v` of every attention (the paper's Table IV setting): 16 transformer blocks
x (attn1.to_q, attn1.to_v, attn2.to_q, attn2.to_v) = 64 nn.Linear layers of SD1.5's shapes, each fed a random
input of the size it sees in a UNet forward at batch 2 (classifier-free guidance): image tokens 64/16/4/1 per
level at an 8x8 latent (64x at 64x64, where SD1.5 trains at 512 px), and 77 text tokens of width 768 for
attn2.to_v. Only these layers are run: the rest of a UNet's time is the same for every variant, and its noise
can exceed a LoRA's whole cost (bench/styleinject.py times the whole 860M-parameter UNet as well).

Variants: base (adapters off), LoRA r=32 (PEFT, unmerged), StyleInject r=32 with 4 and 16 styles (DMA + STA).
All adapters are injected once and switched between calls, outside the timed region; calls are interleaved variant
by variant so load drift hits all alike. Forward runs under torch.inference_mode; forward+backward takes the
gradient of the adapters' parameters and of the input (as inside a UNet, where the input comes from earlier
trainable layers), with a fixed random output gradient. The figure is each variant's extra time over base
(median of the timed calls); the ratio is StyleInject's extra over LoRA's. Goals (issue 17): <= 1.3 at 64x64 and
<= 1.5 at 8x8 for 4 styles. One thread by default: on a shared, loaded CPU OpenMP spin-waiting makes
multi-threaded timings erratic.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: `bench` and `selma` importable

import torch  # noqa: E402
from peft import LoraConfig, inject_adapter_in_model  # noqa: E402
from peft.tuners.tuners_utils import BaseTunerLayer  # noqa: E402
from torch import nn  # noqa: E402

from bench.record import record  # noqa: E402
from bench.styleinject import activate, interleaved_seconds  # noqa: E402
from selma.tuners.style_inject import StyleInjectConfig  # noqa: E402

RANK = 32
BATCH = 2
TARGETS = ["to_q", "to_v"]
LORA = "LoRA r=32"
ADAPTERS = {
    LORA: LoraConfig(r=RANK, lora_alpha=RANK, target_modules=TARGETS),
    "StyleInject r=32 n=4": StyleInjectConfig(r=RANK, num_styles=4, alpha=RANK, target_modules=TARGETS),
    "StyleInject r=32 n=16": StyleInjectConfig(r=RANK, num_styles=16, alpha=RANK, target_modules=TARGETS),
}
VARIANTS = ["base", *ADAPTERS]
GOALS = {"8x8": 1.5, "64x64": 1.3}  # StyleInject n=4 extra / LoRA extra
# SD1.5's transformer blocks: (channels, image tokens at an 8x8 latent, blocks at that level).
LEVELS = [(320, 64, 2), (640, 16, 2), (1280, 4, 2), (1280, 1, 1), (1280, 4, 3), (640, 16, 3), (320, 64, 3)]
TEXT_TOKENS, TEXT_WIDTH = 77, 768


def sd15_layer_shapes(latent_scale: int) -> list[tuple[str, int, int, int]]:
    """(role, in, out, tokens) of the 64 adapted layers; latent_scale multiplies the image tokens (64 at 64x64)."""
    shapes = []
    for channels, tokens, blocks in LEVELS:
        image_tokens = tokens * latent_scale
        for _ in range(blocks):
            shapes += [
                ("to_q", channels, channels, image_tokens),  # attn1
                ("to_v", channels, channels, image_tokens),
                ("to_q", channels, channels, image_tokens),  # attn2: queries from the image
                ("to_v", TEXT_WIDTH, channels, TEXT_TOKENS),  # attn2: values from the text
            ]
    return shapes


class Layers(nn.Module):
    """The 64 layers, each the only child of its holder and named by its role, so PEFT targets them by name."""

    def __init__(self, shapes: list[tuple[str, int, int, int]]) -> None:
        super().__init__()
        self.holders = nn.ModuleList()
        for role, fan_in, fan_out, _ in shapes:
            holder = nn.Module()
            holder.add_module(role, nn.Linear(fan_in, fan_out))
            self.holders.append(holder)

    def layers(self) -> list[nn.Module]:
        return [next(iter(holder.children())) for holder in self.holders]


def build(shapes: list[tuple[str, int, int, int]]) -> tuple[Layers, list[BaseTunerLayer]]:
    torch.manual_seed(0)
    model = Layers(shapes).requires_grad_(False)
    with warnings.catch_warnings():  # PEFT warns that a second and third adapter join the first: intended here
        warnings.simplefilter("ignore")
        for name, config in ADAPTERS.items():
            inject_adapter_in_model(config, model, adapter_name=name)
    for module in model.modules():  # as in training: LoRA B starts at 0, StyleInject's up too; make both non-zero
        for key, param in module.named_parameters(recurse=False):
            if "lora_B" in key or "styleinject_up" in key or "styleinject_hyper" in key:
                nn.init.normal_(param, std=0.01)
    return model, [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


def forward_all(calls: list[tuple[nn.Module, torch.Tensor]]) -> None:
    for layer, x in calls:
        layer(x)


def forward_backward_all(calls: list[tuple[nn.Module, torch.Tensor, torch.Tensor]]) -> None:
    for layer, x, grad in calls:
        layer(x).backward(grad)


def set_variant(model: Layers, tuner_layers: list[BaseTunerLayer], train: bool, variant: str) -> None:
    activate(tuner_layers, variant)
    for name, param in model.named_parameters():
        param.grad = None
        param.requires_grad_(train and variant != "base" and f".{variant}." in f"{name}.")


def measure(args: argparse.Namespace) -> dict[tuple[str, str], dict[str, float]]:
    """(latent, mode) -> variant -> median seconds of one pass over the 64 layers."""
    results: dict[tuple[str, str], dict[str, float]] = {}
    for latent, scale in (("8x8", 1), ("64x64", 64)):
        shapes = sd15_layer_shapes(scale)
        model, tuner_layers = build(shapes)
        gen = torch.Generator().manual_seed(scale)
        inputs = [torch.randn(BATCH, tokens, fan_in, generator=gen) for _, fan_in, _, tokens in shapes]
        grads = [torch.randn(BATCH, tokens, fan_out, generator=gen) for _, _, fan_out, tokens in shapes]
        layers = model.layers()
        repeats = args.repeats * (8 if scale == 1 else 1)
        with torch.inference_mode():
            calls = functools.partial(forward_all, list(zip(layers, inputs, strict=True)))
            prepare = functools.partial(set_variant, model, tuner_layers, False)
            timed = interleaved_seconds(dict.fromkeys(VARIANTS, calls), prepare, args.warmup, repeats)
        results[latent, "forward"] = {v: statistics.median(t) for v, t in timed.items()}
        leaves = [x.clone().requires_grad_(True) for x in inputs]
        calls = functools.partial(forward_backward_all, list(zip(layers, leaves, grads, strict=True)))
        prepare = functools.partial(set_variant, model, tuner_layers, True)
        timed = interleaved_seconds(dict.fromkeys(VARIANTS, calls), prepare, args.warmup, repeats)
        results[latent, "forward+backward"] = {v: statistics.median(t) for v, t in timed.items()}
        print(f"  {latent} done", flush=True)
    return results


def report(results: dict[tuple[str, str], dict[str, float]]) -> None:
    print(f"\n{'latent':<8}{'pass':<18}{'variant':<24}{'median':>11}{'extra':>11}{'extra / LoRA extra':>21}")
    for (latent, mode), seconds in results.items():
        base = seconds["base"]
        lora_extra = seconds[LORA] - base
        for variant in VARIANTS:
            extra = seconds[variant] - base
            ratio = f"{extra / lora_extra:.2f}" if variant.startswith("StyleInject") else ""
            if variant.startswith("StyleInject") and variant.endswith("n=4"):
                ratio += f" (goal <= {GOALS[latent]})"
            print(f"{latent:<8}{mode:<18}{variant:<24}{seconds[variant] * 1e3:9.2f}ms{extra * 1e3:9.2f}ms{ratio:>21}")
            if variant.startswith("StyleInject"):
                record(
                    "styleinject_layers",
                    f"{variant} extra cost, SD1.5 to_q/to_v x64, {latent} latent, batch {BATCH}, {mode}",
                    f"{LORA} (PEFT, unmerged) extra",
                    lora_extra * 1e3,
                    variant,
                    extra * 1e3,
                    "ms",
                    goal=f"<= {GOALS[latent]}" if variant.endswith("n=4") else "",
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, 1 warm-up (a smoke run)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per variant (x8 at 8x8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per variant before timing")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.warmup = 2, 1
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), fp32 CPU, batch {BATCH}, r={RANK}")
    report(measure(args))


if __name__ == "__main__":
    main()
