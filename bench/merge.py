"""Benchmark: `svd` merging from the factors against forming every ΔW densely and SVD'ing it, in one run.

    python bench/merge.py              # five r=128 experts over SD1.5's 128 attention projections
    python bench/merge.py --modules 16 # a smoke run over 16 of them (same mix of shapes)

The experts are random LoRA factors (A ~ N(0, 1/r), B ~ N(0, 0.01²), alpha = r) on SD1.5's
to_q/to_k/to_v/to_out.0, shapes read from `build_sd15_unet(device="meta")`. Each path runs in a fresh
subprocess that builds the same experts, then merges them to rank 128 with weights 1/5:
- factors: `selma.merging.merge_lora_experts(..., MergeConfig("svd", rank=128))`, the public API (float64
  `eigh` of a Gram matrix built from the factors: R×R after a QR where R = Σ r_k < min(out, in), else the
  min(out, in)² one of ΔW; it also hashes the inputs for the recipe);
- dense: per module ΔW = Σ_k w_k s_k B_k A_k formed out×in, `torch.linalg.svd`, top 128 kept.
Times are wall clock and process CPU time (the CPU time is steadier on a shared machine). Peak memory is
the process's RSS high-water mark (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) after the merge minus its
RSS just before it (the experts and libraries already loaded); tracemalloc cannot see torch's allocations.
The workers run with glibc's mmap threshold fixed (MALLOC_MMAP_THRESHOLD_): by default glibc raises it
after freeing a large block, and freed temporaries then stay in the heap between the merged factors, so
RSS would measure fragmentation rather than the path's working memory. Both paths keep their result (same
size) until the end; "working" is the peak minus that result. The parent prints times, peaks, their
ratios, and the largest relative difference between the two merged ΔW's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import selma  # noqa: F401
except ImportError:  # run from a checkout: python bench/merge.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from selma.experts.lora_expert import LoraExpert, LoraModule  # noqa: E402

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def attention_shapes(modules: int) -> dict[str, tuple[int, int]]:
    """SD1.5's attention projections (out, in), `modules` of them spread over the UNet (all 128 by default)."""
    from selma.testing.tiny_models import build_sd15_unet

    unet = build_sd15_unet(device="meta")
    shapes = {n: (m.out_features, m.in_features) for n, m in unet.named_modules() if n.endswith(TARGETS)}
    names = list(shapes)
    step = max(1, len(names) // modules)
    return {n: shapes[n] for n in names[::step][:modules]}


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


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    experts = random_experts(attention_shapes(args.modules), args.experts, args.rank)
    merge = merge_factors if args.worker == "factors" else merge_dense
    merge(random_experts({"warm.up": (64, 64)}, 2, 4), 4, [])  # load lazy modules and LAPACK before measuring
    before_rss, before_peak = rss_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ticks, cpu = [time.perf_counter()], time.process_time()
    result = merge(experts, args.rank, ticks)
    seconds, cpu_seconds = time.perf_counter() - ticks[0], time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    torch.save(result, args.out)
    per_module = dict(zip(result, (b - a for a, b in zip(ticks, ticks[1:], strict=False)), strict=True))
    stats = {"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_bytes": peak - before_rss}
    stats["slack_bytes"] = before_peak - before_rss
    print(json.dumps({**stats, "per_module": per_module}))


def run_worker(path: str, args: argparse.Namespace, out: Path) -> dict:
    command = [sys.executable, __file__, "--worker", path, "--out", str(out), "--modules", str(args.modules)]
    command += ["--experts", str(args.experts), "--rank", str(args.rank), "--threads", str(args.threads)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}  # glibc's default, kept fixed (see top)
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=128, help="attention projections merged (SD1.5 has 128)")
    parser.add_argument("--experts", type=int, default=5)
    parser.add_argument("--rank", type=int, default=128, help="rank of each expert and of the merge")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per path (1: stable ratios on a shared machine)"
    )
    parser.add_argument("--worker", choices=("factors", "dense"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    shapes = attention_shapes(args.modules)
    kinds = sorted({f"{o}x{i}" for o, i in shapes.values()}, key=lambda s: tuple(map(int, s.split("x"))))
    threads = args.threads
    print(
        f"{args.experts} random r={args.rank} experts over {len(shapes)} SD1.5 attention projections "
        f"({', '.join(kinds)}); svd merge to rank {args.rank}; torch {torch.__version__}, {threads} thread(s)"
    )
    with tempfile.TemporaryDirectory(prefix="selma-bench-merge-") as tmp:
        stats = {path: run_worker(path, args, Path(tmp) / f"{path}.pt") for path in ("factors", "dense")}
        factors, dense = (torch.load(Path(tmp) / f"{p}.pt") for p in ("factors", "dense"))

    mib = 1024**2
    result_bytes = sum(t.numel() * t.element_size() for up, down, _ in dense.values() for t in (up, down))
    print(f"{'path':<28}{'wall (s)':>10}{'CPU (s)':>10}{'peak RSS over baseline (MiB)':>31}{'working (MiB)':>15}")
    for path, label in (("factors", "from the factors (selma)"), ("dense", "dense ΔW + SVD (reference)")):
        st = stats[path]
        print(
            f"{label:<28}{st['seconds']:>10.2f}{st['cpu_seconds']:>10.2f}{st['peak_bytes'] / mib:>31.1f}"
            f"{(st['peak_bytes'] - result_bytes) / mib:>15.1f}"
        )
    time_ratio = stats["dense"]["seconds"] / stats["factors"]["seconds"]
    cpu_ratio = stats["dense"]["cpu_seconds"] / stats["factors"]["cpu_seconds"]
    memory_ratio = stats["dense"]["peak_bytes"] / max(stats["factors"]["peak_bytes"], 1)
    working = {path: stats[path]["peak_bytes"] - result_bytes for path in stats}
    working_ratio = working["dense"] / max(working["factors"], 1)
    print(
        f"ratio dense / factors: time {time_ratio:.1f}x (CPU {cpu_ratio:.1f}x), peak memory {memory_ratio:.1f}x "
        f"(working memory {working_ratio:.1f}x)"
    )
    print(f"(each path's peak includes its merged result, {result_bytes / mib:.1f} MiB, the same for both)")
    stacked = args.experts * args.rank
    full = sum(1 for o, i in shapes.values() if stacked >= min(o, i))
    print(
        f"stacked rank Σ r_k = {stacked}: >= min(out, in) on {full} of {len(shapes)} modules, where ΔW may have "
        "full rank: both paths then decompose a min(out, in)-sized matrix (eigh of the Gram matrix against an "
        "SVD), and only where Σ r_k < min(out, in) is the factor path's problem smaller"
    )
    print("per module shape (ΔW out x in), mean seconds per module:")
    for kind in kinds:
        names = [n for n, (o, i) in shapes.items() if f"{o}x{i}" == kind]
        mine, theirs = (sum(stats[p]["per_module"][n] for n in names) / len(names) for p in ("factors", "dense"))
        print(f"  {kind:>9} x{len(names):<3} factors {mine:.3f}  dense {theirs:.3f}  ratio {theirs / mine:.1f}x")
    slack = max(s["slack_bytes"] for s in stats.values()) / mib
    print(f"(baseline check: the RSS high-water mark was at most {slack:.1f} MiB above the RSS before the merge)")

    worst, worst_name, energy_gap = 0.0, "", 0.0
    for name, (up, down, energy) in dense.items():
        reference = up.double() @ down.double()
        mine = factors[name][0].double() @ factors[name][1].double()
        difference = (torch.linalg.matrix_norm(mine - reference) / torch.linalg.matrix_norm(reference)).item()
        if difference >= worst:
            worst, worst_name = difference, name
        energy_gap = max(energy_gap, abs(energy - factors[name][2]))
    energies = [e for _, _, e in dense.values()]
    print(
        f"max relative difference of the merged ΔW: {worst:.2e} ({worst_name}); energy kept "
        f"{min(energies):.4f}..{max(energies):.4f}, max difference {energy_gap:.1e}"
    )


if __name__ == "__main__":
    main()
