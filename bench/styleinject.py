"""Benchmark: the forward cost of StyleInject against an unmerged LoRA on an SD1.5-size UNet, CPU, fp32.

    python bench/styleinject.py            # 8x8 latent, batch 1 and 2, 1 thread
    python bench/styleinject.py --quick    # fewer repeats (a smoke run)

One run measures, on one random SD1.5-size UNet (`build_sd15_unet`, 860M parameters), with adapters on
`to_q, to_v` of every attention (the paper's Table IV setting; 64 layers):

1. UNet forward (8x8 latent, 77 text tokens) of the base, with a LoRA (r=32, unmerged) and with StyleInject
   (r=32, num_styles 4 and 16), as ratios to the base measured in the same run.
2. The same restricted to the 64 adapted layers, each run on the input it sees in that forward: the adapters'
   extra cost without the rest of the UNet, whose run-to-run noise can exceed a LoRA's whole cost.
   The goal: StyleInject's extra cost <= 1.5x LoRA's extra cost. Then the same layers on inputs the size a
   64x64 latent (512 px, where SD1.5 trains) gives them: 64x the tokens, except the 77 text tokens.
3. The down-projection Σ p_i A_i x alone: a Python loop over the styles against the fused forms
   (`stacked`: one matmul over the stacked A_i; `mix_weights`: mix the A_i per sample, then one batched matmul;
   `auto`: what the layer uses, the cheaper of the two for the shape).

All adapters are injected once (LoRA inside, StyleInject around it, both adapters of StyleInject in one layer)
and switched between calls, outside the timed region; every variant, the base included, passes through the
inactive wrappers (a few microseconds per layer). Calls are interleaved variant by variant, so load drift on a
shared machine hits all variants alike. Medians of N timed calls after warm-up calls under
torch.inference_mode; the minimum (the call least disturbed by other processes) is printed too. Threads
default to 1: on a shared, loaded CPU, OpenMP spin-waiting makes multi-threaded timings erratic.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

try:
    import selma  # noqa: F401
except ImportError:  # run from a checkout: python bench/styleinject.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from peft import LoraConfig, inject_adapter_in_model  # noqa: E402
from peft.tuners.tuners_utils import BaseTunerLayer  # noqa: E402
from torch import nn  # noqa: E402

from selma.testing.tiny_models import build_sd15_unet  # noqa: E402
from selma.tuners.style_inject import StyleInjectConfig, mixed_down_linear  # noqa: E402

TARGETS = ["to_q", "to_v"]
RANK = 32
LORA = "LoRA r=32"
ADAPTERS = {  # adapter name -> config; "base" is every adapter disabled
    LORA: LoraConfig(r=RANK, lora_alpha=RANK, target_modules=TARGETS),
    "StyleInject r=32 n=4": StyleInjectConfig(r=RANK, num_styles=4, alpha=RANK, target_modules=TARGETS),
    "StyleInject r=32 n=16": StyleInjectConfig(r=RANK, num_styles=16, alpha=RANK, target_modules=TARGETS),
}
VARIANTS = ["base", *ADAPTERS]


def interleaved_seconds(
    calls: dict[str, Callable[[], object]], prepare: Callable[[str], None], warmup: int, repeats: int
) -> dict[str, list[float]]:
    """`repeats` timings of each call, cycling through the calls; prepare(name) runs untimed before each."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for index in range(warmup + repeats):
        for name, call in calls.items():
            prepare(name)
            start = time.perf_counter()
            call()
            if index >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def activate(layers: list[BaseTunerLayer], variant: str) -> None:
    """Make `variant` the only active adapter of every tuner layer ("base": all disabled)."""
    for layer in layers:
        if variant == "base":
            layer.enable_adapters(False)
        else:
            layer.enable_adapters(True)
            layer.set_adapter(variant)


def unet_inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(batch)
    return (
        torch.randn(batch, 4, 8, 8, generator=gen),
        torch.full((batch,), 500),
        torch.randn(batch, 77, 768, generator=gen),
    )


def captured_target_inputs(unet: nn.Module, inputs: tuple) -> list[tuple[str, torch.Tensor]]:
    """(module name, input) of every targeted layer call in one base forward."""
    calls: list[tuple[str, torch.Tensor]] = []
    hooks = [
        module.register_forward_pre_hook(lambda m, args, _name=name: calls.append((_name, args[0])))
        for name, module in unet.named_modules()
        if name.rpartition(".")[2] in TARGETS
    ]
    unet(*inputs)
    for hook in hooks:
        hook.remove()
    return calls


def run_layers(layers: list[tuple[nn.Module, torch.Tensor]]) -> None:
    for layer, x in layers:
        layer(x)


def report(title: str, times: dict[str, dict[int, list[float]]], batches: list[int]) -> None:
    for statistic in (statistics.median, min):
        print(f"\n{title}: {statistic.__name__} of the timed calls; ratio to base (extra = ratio - 1)")
        print(f"  {'variant':<24}" + "".join(f"{f'batch {b}':>34}" for b in batches))
        extra: dict[tuple[str, int], float] = {}
        for variant in VARIANTS:
            cells = []
            for batch in batches:
                seconds = statistic(times[variant][batch])
                ratio = seconds / statistic(times["base"][batch])
                extra[variant, batch] = ratio - 1
                cells.append(f"{seconds * 1e3:10.2f} ms  x{ratio:6.3f} ({ratio - 1:+8.2%})")
            print(f"  {variant:<24}" + "".join(f"{cell:>34}" for cell in cells))
        for variant in ADAPTERS:
            if variant == LORA:
                continue
            cells = [
                f"batch {b}: {extra[variant, b] / extra[LORA, b]:5.2f}x" if extra[LORA, b] > 0 else f"batch {b}: n/a"
                for b in batches
            ]
            print(f"  {variant} extra / LoRA extra (goal <= 1.5x): {', '.join(cells)}")
    spreads = []
    for batch in batches:
        base = times["base"][batch]
        spreads.append(f"batch {batch}: {(max(base) - min(base)) / statistics.median(base):.1%}")
    print(f"  base (max - min) / median: {', '.join(spreads)} (the machine's noise in this run)")


def at_64x64_latent(captured: list[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    """Random inputs of the shapes the layers see at a 64x64 latent: 64x the image tokens (text stays 77)."""
    gen = torch.Generator().manual_seed(64)
    scaled = []
    for name, x in captured:
        tokens = x.shape[1] if x.shape[1] == 77 else x.shape[1] * 64
        scaled.append((name, torch.randn(x.shape[0], tokens, x.shape[2], generator=gen)))
    return scaled


def adapter_parameters(unet: nn.Module) -> dict[str, int]:
    """Parameters per adapter (their names hold the adapter name as one dotted segment)."""
    params = dict(unet.named_parameters())
    return {name: sum(p.numel() for key, p in params.items() if f".{name}." in f"{key}.") for name in ADAPTERS}


def bench_unet(unet: nn.Module, batches: list[int], args: argparse.Namespace) -> None:
    captured = {batch: captured_target_inputs(unet, unet_inputs(batch)) for batch in batches}
    with warnings.catch_warnings():  # PEFT warns that a second and third adapter join the first: intended here
        warnings.simplefilter("ignore")
        for name, config in ADAPTERS.items():
            inject_adapter_in_model(config, unet, adapter_name=name)
    layers = [module for module in unet.modules() if isinstance(module, BaseTunerLayer)]
    prepare = functools.partial(activate, layers)
    counts = adapter_parameters(unet)
    print(
        "  adapter parameters (weights every forward reads): "
        + ", ".join(f"{name} {count / 1e6:.2f}M ({count / counts[LORA]:.1f}x LoRA)" for name, count in counts.items())
    )
    unet_times: dict[str, dict[int, list[float]]] = {variant: {} for variant in VARIANTS}
    layer_times: dict[str, dict[int, list[float]]] = {variant: {} for variant in VARIANTS}
    large_times: dict[str, dict[int, list[float]]] = {variant: {} for variant in VARIANTS}
    for batch in batches:
        forward = functools.partial(unet, *unet_inputs(batch))
        timed = interleaved_seconds(dict.fromkeys(VARIANTS, forward), prepare, args.warmup, args.repeats)
        for variant in VARIANTS:
            unet_times[variant][batch] = timed[variant]
        layer_inputs = [(unet.get_submodule(name), x) for name, x in captured[batch]]
        forward_layers = functools.partial(run_layers, layer_inputs)
        timed = interleaved_seconds(dict.fromkeys(VARIANTS, forward_layers), prepare, args.warmup, args.repeats * 4)
        for variant in VARIANTS:
            layer_times[variant][batch] = timed[variant]
        large_inputs = [(unet.get_submodule(name), x) for name, x in at_64x64_latent(captured[batch])]
        forward_large = functools.partial(run_layers, large_inputs)
        timed = interleaved_seconds(dict.fromkeys(VARIANTS, forward_large), prepare, 1, args.repeats)
        for variant in VARIANTS:
            large_times[variant][batch] = timed[variant]
        print(f"  batch {batch} done", flush=True)
    layer_count = len(captured[batches[0]])
    report("UNet forward (8x8 latent)", unet_times, batches)
    report(f"the {layer_count} adapted layers only (8x8 latent)", layer_times, batches)
    report(f"the {layer_count} adapted layers only, inputs as at a 64x64 latent", large_times, batches)


def per_style_loop(x: torch.Tensor, down: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    out = coeffs[:, 0, None, None] * F.linear(x, down[0])
    for i in range(1, down.shape[0]):
        out = out + coeffs[:, i, None, None] * F.linear(x, down[i])
    return out


def bench_down_projection(args: argparse.Namespace) -> None:
    print("\ndown-projection Σ p_i A_i x, r=32, batch 2 (median; loop / auto = speed-up of the layer's fused form)")
    shapes = [
        ("8x8 latent, top level", 64, 320),
        ("cross-attn to_v, 77 tokens", 77, 768),
        ("64x64 latent, top level", 4096, 320),
    ]
    print(f"  {'shape':<30}{'n':>4}{'loop':>11}{'stacked':>11}{'mix_weights':>13}{'auto':>11}{'loop/auto':>11}")
    gen = torch.Generator().manual_seed(0)
    for label, tokens, width in shapes:
        for num_styles in (4, 16):
            x = torch.randn(2, tokens, width, generator=gen)
            down = torch.randn(num_styles, RANK, width, generator=gen)
            coeffs = torch.softmax(torch.randn(2, num_styles, generator=gen), -1)
            calls = {"loop": functools.partial(per_style_loop, x, down, coeffs)}
            for strategy in ("stacked", "mix_weights", "auto"):
                calls[strategy] = functools.partial(mixed_down_linear, x, down, coeffs, strategy)
            repeats = args.repeats * 4 if tokens < 1000 else args.repeats
            timed = interleaved_seconds(calls, lambda name: None, args.warmup, repeats)
            ms = {name: statistics.median(values) * 1e3 for name, values in timed.items()}
            cells = f"{ms['loop']:9.3f}ms{ms['stacked']:9.3f}ms{ms['mix_weights']:11.3f}ms{ms['auto']:9.3f}ms"
            print(f"  {label:<30}{num_styles:>4}{cells}{ms['loop'] / ms['auto']:>10.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats, 1 warm-up (a smoke run)")
    parser.add_argument("--repeats", type=int, default=9, help="timed calls per variant and batch")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per variant before timing")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2], help="batch sizes")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.warmup = 2, 1
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), fp32 CPU, targets {TARGETS}")
    print("building an SD1.5-size UNet with random weights ...", flush=True)
    unet = build_sd15_unet(device="cpu").eval()
    with torch.inference_mode():
        bench_unet(unet, args.batches, args)
        bench_down_projection(args)


if __name__ == "__main__":
    main()
