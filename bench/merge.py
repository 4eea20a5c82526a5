"""Benchmark: merging K LoRA experts to rank r, our per-module route against PEFT and the dense path, in one run.

    python bench/merge.py                   # 2, 5 and 8 experts at r=32 and r=128, over 32 of SD1.5's modules
    python bench/merge.py --modules 128     # all 128 attention projections (several minutes)
    python bench/merge.py --experts 5 --rank 128   # one configuration

The experts are random LoRA factors (A ~ N(0, 1/r), B ~ N(0, 0.01²), alpha = r) on SD1.5's
to_q/to_k/to_v/to_out.0, shapes read from `build_sd15_unet(device="meta")` (`--modules` of them, spread over the
UNet so every shape is there), merged with weights 1/K. Each path runs in a fresh subprocess that builds the same
experts, one configuration after the other:
- ours: `selma.merging.merge_lora_experts(..., MergeConfig("svd", rank=r))`, the public API. Per module it takes
  the cheaper exact route: QR + an R×R float64 core from the factors when R = Σ r_k is well below min(out, in),
  else ΔW and its SVD (selma/merging/low_rank.py); it also hashes the inputs for the recipe;
- dense: per module ΔW = Σ_k w_k s_k B_k A_k formed out×in, `torch.linalg.svd`, top r kept (kohya's svd_merge);
- PEFT svd: `add_weighted_adapter(names, weights, "merged", combination_type="svd", svd_rank=r)` on a model of
  nn.Linear layers of the same shapes carrying the K adapters (PEFT's defaults otherwise: full_matrices=True);
- PEFT cat: `combination_type="cat"`: the factors concatenated, no truncation (rank Σ r_k, exact).
Times are wall clock and process CPU time. Peak memory is the process's RSS high-water mark (VmHWM, reset
before each merge through /proc/self/clear_refs) minus its RSS just before the merge (experts, model and
libraries loaded), with glibc's mmap threshold fixed (MALLOC_MMAP_THRESHOLD_: by default glibc raises it after a
large free, and RSS would then measure heap fragmentation rather than working memory). The error is
‖merged ΔW − Σ_k w_k ΔW_k‖_F / ‖Σ_k w_k ΔW_k‖_F over all modules, in float64: the truncation's own error for the
rank-r paths (the same for all three when each is exact), zero for cat. Ratios are ours / anchor (< 1: faster).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: `bench` and `selma` importable

import torch  # noqa: E402

from bench.record import record  # noqa: E402
from selma.experts.lora_expert import LoraExpert, LoraModule  # noqa: E402

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def attention_shapes(modules: int) -> dict[str, tuple[int, int]]:
    """SD1.5's attention projections (out, in), `modules` of them spread over the UNet (all 128 by default)."""
    from selma.testing.tiny_models import build_sd15_unet

    unet = build_sd15_unet(device="meta")
    shapes = {n: (m.out_features, m.in_features) for n, m in unet.named_modules() if n.endswith(TARGETS)}
    names = list(shapes)
    if modules >= len(names):
        return shapes
    step = len(names) // modules  # spread over the UNet, cycling through the four projections of a block
    picked = [names[i * step + i % len(TARGETS)] for i in range(modules)]
    return {n: shapes[n] for n in picked}


def random_experts(shapes: dict[str, tuple[int, int]], count: int, rank: int) -> list[LoraExpert]:
    gen = torch.Generator().manual_seed(0)
    experts = []
    for k in range(count):
        modules = {
            name: LoraModule(
                down=torch.randn(rank, fan_in, generator=gen) / math.sqrt(rank),
                up=torch.randn(fan_out, rank, generator=gen) * 0.01,
                alpha=float(rank),
            )
            for name, (fan_out, fan_in) in shapes.items()
        }
        experts.append(LoraExpert(modules, {"skill": f"skill{k}"}))
    return experts


Merged = dict[str, tuple[torch.Tensor, torch.Tensor, float]]  # module -> (up, down, energy kept)


def merge_dense(experts: list[LoraExpert], rank: int, ticks: list[float]) -> Merged:
    """The reference: every ΔW_k formed densely, summed with weights 1/K, SVD'd, truncated."""
    weight = 1.0 / len(experts)
    merged = {}
    for name in experts[0].modules:
        total = None
        for expert in experts:
            module = expert.modules[name]
            delta = (weight * module.scale) * (module.up @ module.down)
            total = delta if total is None else total.add_(delta)
        u, s, vh = torch.linalg.svd(total, full_matrices=False)
        root = s[:rank].sqrt()
        energy = (s[:rank].double().square().sum() / s.double().square().sum()).item()
        merged[name] = (u[:, :rank] * root, root[:, None] * vh[:rank], energy)
        ticks.append(time.perf_counter())
    return merged


def merge_factors(experts: list[LoraExpert], rank: int, ticks: list[float]) -> Merged:
    from selma.merging import MergeConfig, merge_lora_experts

    tick = lambda done, total: ticks.append(time.perf_counter())  # noqa: E731
    result = merge_lora_experts(experts, MergeConfig("svd", rank=rank), on_progress=tick)
    energies = {r.module: r.energy_kept for r in result.report}
    return {n: (m.up, m.down, energies[n]) for n, m in result.expert.modules.items()}


def peft_model(experts: list[LoraExpert], rank: int):
    """nn.Linear layers of the experts' shapes, each the only child of its holder (so PEFT targets it by the last
    name part), carrying every expert as a PEFT LoRA adapter; returns the model and holder index -> module name."""
    from peft import LoraConfig, get_peft_model
    from torch import nn

    names = list(experts[0].modules)
    roles = [name.rpartition(".")[2] if not name.endswith("to_out.0") else "out0" for name in names]
    model = nn.Module()
    model.holders = nn.ModuleList()
    for name, role in zip(names, roles, strict=True):
        module = experts[0].modules[name]
        holder = nn.Module()
        holder.add_module(role, nn.Linear(module.down.shape[1], module.up.shape[0], bias=False))
        model.holders.append(holder)
    config = dict(r=rank, lora_alpha=rank, target_modules=sorted(set(roles)), init_lora_weights=False)
    peft = get_peft_model(model, LoraConfig(**config), adapter_name="e0")
    for k in range(1, len(experts)):
        peft.add_adapter(f"e{k}", LoraConfig(**config))
    with torch.no_grad():
        for index, (name, role) in enumerate(zip(names, roles, strict=True)):
            layer = getattr(peft.base_model.model.holders[index], role)
            for k, expert in enumerate(experts):
                layer.lora_A[f"e{k}"].weight.copy_(expert.modules[name].down)
                layer.lora_B[f"e{k}"].weight.copy_(expert.modules[name].up)
    return peft, list(zip(names, roles, strict=True))


def merge_peft(model, experts: list[LoraExpert], rank: int, ticks: list[float], combination: str) -> Merged:
    peft, layers = model
    adapters = [f"e{k}" for k in range(len(experts))]
    weights = [1.0 / len(experts)] * len(experts)
    options = {"svd_rank": rank} if combination == "svd" else {}
    peft.base_model.add_weighted_adapter(adapters, weights, "merged", combination_type=combination, **options)
    ticks.append(time.perf_counter())
    merged = {}
    for index, (name, role) in enumerate(layers):
        layer = getattr(peft.base_model.model.holders[index], role)
        up = layer.lora_B["merged"].weight.detach() * layer.scaling["merged"]
        merged[name] = (up, layer.lora_A["merged"].weight.detach(), float("nan"))
    return merged


def prepare(path: str, experts: list[LoraExpert], rank: int) -> Callable[[list[float]], Merged]:
    """The merge `path` of `experts` as a call taking the tick list. What must exist before the merge (the PEFT
    model carrying the experts as adapters) is built here, outside the timed region."""
    if path.startswith("peft_"):
        model = peft_model(experts, rank)
        return functools.partial(merge_peft, model, experts, rank, combination=path.removeprefix("peft_"))
    return functools.partial(merge_factors if path == "ours" else merge_dense, experts, rank)


LABELS = {  # path -> label, in the order the paths run and are reported
    "ours": "selma (per-module route)",
    "dense": "dense ΔW + SVD (kohya)",
    "peft_svd": "PEFT add_weighted_adapter svd",
    "peft_cat": "PEFT add_weighted_adapter cat",
}


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def reset_peak_rss() -> None:
    """Make the RSS high-water mark (VmHWM) the current RSS (Linux: "5" to /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def measure_one(path: str, experts: int, rank: int, shapes: dict[str, tuple[int, int]], out: Path) -> dict:
    merge = prepare(path, random_experts(shapes, experts, rank), rank)
    reset_peak_rss()
    before = rss_bytes()
    ticks, cpu = [time.perf_counter()], time.process_time()
    result = merge(ticks)
    seconds, cpu_seconds = time.perf_counter() - ticks[0], time.process_time() - cpu
    peak = peak_rss_bytes()
    torch.save(result, out / f"{path}-{experts}-{rank}.pt")
    steps = list(zip(ticks, ticks[1:], strict=False))
    per_module = dict(zip(result, (b - a for a, b in steps), strict=True)) if len(steps) == len(result) else {}
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_bytes": max(peak - before, 0),
        "per_module": per_module,
    }


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    prepare(args.worker, random_experts({"warm.to_q": (64, 64)}, 2, 4), 4)([])  # lazy modules and LAPACK loaded
    shapes = attention_shapes(args.modules)
    results = {
        f"{experts}-{rank}": measure_one(args.worker, experts, rank, shapes, Path(args.out))
        for rank in args.rank
        for experts in args.experts
    }
    print(json.dumps(results))


def run_worker(path: str, args: argparse.Namespace, out: Path) -> dict:
    command = [sys.executable, __file__, "--worker", path, "--out", str(out), "--modules", str(args.modules)]
    command += ["--experts", *map(str, args.experts), "--rank", *map(str, args.rank), "--threads", str(args.threads)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}  # glibc's default, kept fixed (see top)
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def relative_error(merged: Merged, experts: list[LoraExpert]) -> float:
    """‖merged − exact weighted sum‖_F / ‖exact‖_F over all modules, float64."""
    error = total = 0.0
    for name, (up, down, _) in merged.items():
        exact = sum(
            (m.scale / len(experts)) * (m.up.double() @ m.down.double()) for m in (e.modules[name] for e in experts)
        )
        error += torch.linalg.matrix_norm(up.double() @ down.double() - exact).item() ** 2
        total += torch.linalg.matrix_norm(exact).item() ** 2
    return math.sqrt(error / total)


def report_configuration(experts: int, rank: int, shapes: dict, stats: dict, merged: dict) -> None:
    inputs = random_experts(shapes, experts, rank)
    mib = 1024**2
    stacked = experts * rank
    dense_modules = sum(1 for o, i in shapes.values() if stacked >= min(o, i))
    print(
        f"\n{experts} experts x r={rank} (Σ r_k = {stacked} >= min(out, in) on {dense_modules} of {len(shapes)} "
        f"modules), merged to rank {rank} (cat: {stacked})"
    )
    print(f"  {'path':<32}{'wall (s)':>10}{'CPU (s)':>10}{'peak RSS (MiB)':>16}{'rel. error':>12}{'ours / it':>16}")
    errors = {path: relative_error(merged[path], inputs) for path in LABELS}
    for path in LABELS:
        st = stats[path]
        ratio = "" if path == "ours" else f"{stats['ours']['seconds'] / st['seconds']:.2f} time"
        print(
            f"  {LABELS[path]:<32}{st['seconds']:>10.2f}{st['cpu_seconds']:>10.2f}{st['peak_bytes'] / mib:>16.1f}"
            f"{errors[path]:>12.2e}{ratio:>16}"
        )
        if path == "ours":
            continue
        work = f"merge {experts} experts r={rank} to rank {rank}, {len(shapes)} SD1.5 modules"
        for unit, key in (("s", "seconds"), ("MiB", "peak_bytes")):
            scale = 1 if unit == "s" else 1 / mib
            record(
                "merge",
                f"{work}: {'time' if unit == 's' else 'peak RSS'}",
                LABELS[path],
                st[key] * scale,
                LABELS["ours"],
                stats["ours"][key] * scale,
                unit,
                goal="<= 1" if path == "dense" and unit == "s" else "",
            )
    kinds = sorted({f"{o}x{i}" for o, i in shapes.values()}, key=lambda s: tuple(map(int, s.split("x"))))
    cells = []
    for kind in kinds:
        names = [n for n, (o, i) in shapes.items() if f"{o}x{i}" == kind]
        mine, theirs = (sum(stats[p]["per_module"][n] for n in names) for p in ("ours", "dense"))
        cells.append(f"{kind} {mine / theirs:.2f}")
    print(f"  per shape, ours / dense time: {', '.join(cells)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=32, help="attention projections merged (SD1.5 has 128)")
    parser.add_argument("--experts", type=int, nargs="+", default=[2, 5, 8])
    parser.add_argument("--rank", type=int, nargs="+", default=[32, 128], help="rank of each expert and the merge")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per path (1: stable ratios on a shared machine)"
    )
    parser.add_argument("--worker", choices=tuple(LABELS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    shapes = attention_shapes(args.modules)
    kinds = sorted({f"{o}x{i}" for o, i in shapes.values()}, key=lambda s: tuple(map(int, s.split("x"))))
    print(
        f"random experts over {len(shapes)} SD1.5 attention projections ({', '.join(kinds)}), weights 1/K; "
        f"torch {torch.__version__}, {args.threads} thread(s)"
    )
    with tempfile.TemporaryDirectory(prefix="selma-bench-merge-") as tmp:
        runs = {path: run_worker(path, args, Path(tmp)) for path in LABELS}
        for rank in args.rank:
            for experts in args.experts:
                key = f"{experts}-{rank}"
                stats = {path: runs[path][key] for path in LABELS}
                merged = {path: torch.load(Path(tmp) / f"{path}-{key}.pt") for path in LABELS}
                report_configuration(experts, rank, shapes, stats, merged)


if __name__ == "__main__":
    main()
