"""`selma inspect`: sample prompts with a StyleInject expert and draw what its routers chose.

    selma inspect --model ./sd15 --expert runs/r1/experts/art.safetensors \\
        --prompt "a portrait of a woman" --prompt "a mountain lake" --steps 20 -o runs/r1/router

Writes OUT_DIR/router.json (probabilities [prompt][step][cond/uncond][layer][style], axes, settings, summary),
OUT_DIR/heatmap_<NN>_cond.png and heatmap_<NN>_uncond.png per prompt (layers x steps), and OUT_DIR/embedding.png
(the router vectors of every prompt and step in 2-D, the StyleInject paper's Fig. 9).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .progress import TqdmProgress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, help="base model: a diffusers folder, a .safetensors/.ckpt file, or a hub id"
    )
    parser.add_argument("--expert", required=True, help="a StyleInject expert .safetensors (selma train --method ...)")
    parser.add_argument("--prompt", action="append", required=True, help="prompt to sample; repeatable")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps (default 20)")
    parser.add_argument("--guidance", type=float, default=7.5, help="CFG scale, > 1 (default 7.5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial noise, the same for every prompt")
    parser.add_argument("--negative-prompt", help="negative prompt (the uncond branch; default empty)")
    parser.add_argument("--strength", type=float, default=1.0, help="expert strength (default 1)")
    parser.add_argument("--width", type=int, help="pixels, a multiple of 8 (default: the model's size)")
    parser.add_argument("--height", type=int, help="pixels, a multiple of 8 (default: the model's size)")
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="auto", help="auto (float16 on GPU, float32 on CPU), float32, bfloat16")
    parser.add_argument(
        "--config-folder", help="single-file checkpoints offline: a local diffusers folder of the same architecture"
    )
    parser.add_argument("-o", "--output", required=True, help="output folder for router.json and the PNGs")


def run(args: argparse.Namespace) -> int:
    from ..experts.style_inject_files import apply_style_inject_expert, load_style_inject_expert
    from ..inspection.router_plots import embedding, heatmap, save_png
    from ..inspection.router_report import inspect_router
    from ..models.pipelines import denoiser_of, load_pipeline

    expert = load_style_inject_expert(args.expert)  # a wrong file fails before the model loads
    if not expert.config.use_dma:
        raise ValueError(f"{args.expert} has no router (an 'STA alone' expert, use_dma=False): nothing to inspect")
    pipe = load_pipeline(args.model, device=args.device, dtype=args.dtype, config_folder=args.config_folder)
    apply_style_inject_expert(denoiser_of(pipe), expert, strength=args.strength)
    with TqdmProgress(desc="inspect", unit="step") as progress:
        report = inspect_router(
            pipe,
            args.prompt,
            steps=args.steps,
            guidance=args.guidance,
            seed=args.seed,
            negative_prompt=args.negative_prompt,
            height=args.height,
            width=args.width,
            on_progress=progress,
        )
    report.settings["expert"] = Path(args.expert).name
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    written = [report.save(out / "router.json")]
    for index in range(len(report.prompts)):
        for branch in report.branches:
            written.append(save_png(heatmap(report, index, branch), out / f"heatmap_{index:02d}_{branch}.png"))
    written.append(save_png(embedding(report), out / "embedding.png"))
    summary = report.summary()
    print(
        f"{len(report.layers)} routers x {len(report.timesteps)} steps x {len(report.prompts)} prompt(s); mean "
        f"normalised entropy {summary['mean_normalised_entropy']:.3f} (1 = uniform over the styles)"
    )
    for path in written:
        print(f"wrote {path}")
    return 0
