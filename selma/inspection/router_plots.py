"""Pictures of a `RouterReport` (matplotlib's Agg canvas: no GUI, no global pyplot state), as PIL images.

- `heatmap`: layers x denoising steps for one prompt and branch; the colour is the style the router prefers, its
  strength how sure it is (white = uniform over the styles, full colour = one style only).
- `embedding`: the paper's Fig. 9 — each (prompt, step) router vector (all layers' probabilities side by side)
  projected on its first two principal components; one colour per prompt, steps joined in order.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import torch
from PIL import Image

from ..atomic_files import write_bytes_atomic
from .router_report import RouterReport

DPI = 100
HEATMAP_SIZE = (1000, 700)  # pixels
EMBEDDING_SIZE = (900, 700)
_SHORT = ((r"down_blocks\.", "d"), (r"up_blocks\.", "u"), (r"mid_block\.", "mid."), (r"attentions\.", "a"))
_SHORT += ((r"transformer_blocks\.", "t"),)


def short_layer_name(name: str) -> str:
    """``down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_v`` -> ``d0.a1.t0.attn2.to_v``."""
    for pattern, replacement in _SHORT:
        name = re.sub(pattern, replacement, name)
    return name


MAX_LAYER_LABELS = 40  # beyond this, one label per block: 128 layer names at 4 px each cannot be read


def layer_groups(names: list[str]) -> list[tuple[int, int, str]]:
    """(first row, last row, short block name) per run of layers of one block (``d1.a0.t0`` for
    ``down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q``; other names: all but their last two parts)."""
    groups: list[tuple[int, int, str]] = []
    for row, name in enumerate(names):
        short = short_layer_name(name)
        match = re.match(r"(.+?\.t\d+)(?:\.|$)", short)  # up to the transformer block
        block = match.group(1) if match else short.rsplit(".", 2)[0]
        if groups and groups[-1][2] == block:
            groups[-1] = (groups[-1][0], row, block)
        else:
            groups.append((row, row, block))
    return groups


def _label_layers(axes, names: list[str]) -> None:
    """Every layer's name, or, for many layers, each block's name at its middle with a line between blocks."""
    layers = len(names)
    if layers <= MAX_LAYER_LABELS:
        axes.set_yticks(range(layers), [short_layer_name(n) for n in names], fontsize=max(5, min(8, 420 / layers)))
        axes.set_ylabel("layer")
        return
    groups = layer_groups(names)
    axes.set_yticks([(a + b) / 2 for a, b, _ in groups], [f"{g} ({b - a + 1})" for a, b, g in groups],
                    fontsize=max(5, min(8, 420 / len(groups))))  # fmt: skip
    for first, _, _ in groups[1:]:
        axes.axhline(first - 0.5, color="0.4", linewidth=0.4)
    axes.set_ylabel(f"layer ({layers}, grouped by block: layers per block in brackets)")


def _figure(size: tuple[int, int]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _to_image(figure) -> Image.Image:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)  # no bbox_inches="tight": the size stays what was asked
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write `image` as a PNG, atomically."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)


def _palette(count: int) -> torch.Tensor:
    """`count` distinguishable RGB colours in [0, 1]."""
    from matplotlib import colormaps

    name = "tab10" if count <= 10 else "tab20" if count <= 20 else "hsv"
    cmap = colormaps[name]
    points = [i / max(count, 1) for i in range(count)] if name == "hsv" else [i for i in range(count)]
    return torch.tensor([cmap(p)[:3] for p in points], dtype=torch.float32)


def _route_label(report: RouterReport, route: int) -> str:
    if report.num_experts == 1:
        return f"style {route}"
    return f"expert {route // report.num_styles} style {route % report.num_styles}"


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def heatmap_colours(report: RouterReport, prompt_index: int = 0, branch: str = "cond") -> torch.Tensor:
    """The heatmap's pixels, [layers, steps, 3] in [0, 1]: the preferred route's colour, blended with white by
    the confidence (max p − 1/n) / (1 − 1/n) (0 for a uniform router, 1 for a one-hot one)."""
    if not 0 <= prompt_index < len(report.prompts):
        raise ValueError(f"prompt_index={prompt_index} is out of range: the report has {len(report.prompts)} prompts")
    probs = report.probabilities[prompt_index, :, report.branch(branch)].transpose(0, 1)  # [L, S, routes]
    best, route = probs.max(dim=-1)
    n = report.num_styles
    confidence = ((best - 1 / n) / (1 - 1 / n)).clamp(0, 1) if n > 1 else torch.ones_like(best)
    colours = _palette(probs.shape[-1])[route]
    return 1 - confidence[..., None] * (1 - colours)


def heatmap(
    report: RouterReport, prompt_index: int = 0, branch: str = "cond", *, size: tuple[int, int] = HEATMAP_SIZE
) -> Image.Image:
    """Layers x steps for one prompt and branch ('cond' or 'uncond'), as an RGB image of `size` pixels."""
    from matplotlib.patches import Patch

    pixels = heatmap_colours(report, prompt_index, branch)
    figure = _figure(size)
    axes = figure.add_axes((0.22, 0.1, 0.58, 0.8))
    layers, steps = pixels.shape[:2]
    axes.imshow(pixels.numpy(), aspect="auto", interpolation="nearest")
    axes.set_xlabel("denoising step (UNet call)")
    intervals = min(steps - 1, 9)  # at most 10 labelled steps, first and last included
    step_ticks = sorted({round(i * (steps - 1) / intervals) for i in range(intervals + 1)}) if intervals else [0]
    axes.set_xticks(step_ticks, [str(s + 1) for s in step_ticks])
    _label_layers(axes, report.layers)
    prompt = _clip(report.prompts[prompt_index], 70)
    axes.set_title(f'router, {branch}: "{prompt}"', fontsize=10)
    routes = report.probabilities.shape[-1]
    palette = _palette(routes)
    handles = [Patch(color=palette[r].tolist(), label=_route_label(report, r)) for r in range(routes)]
    figure.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.81, 0.9), fontsize=8, title="preferred")
    figure.text(0.81, 0.08, "paler = less sure\n(white = uniform)", fontsize=8, va="bottom", ha="left", color="0.3")
    return _to_image(figure)


def embedding_coordinates(report: RouterReport, branch: str = "cond") -> tuple[torch.Tensor, list[float]]:
    """The (prompt, step) router vectors (all layers' probabilities concatenated) projected on their first two
    principal components: coordinates [prompts, steps, 2] and the fraction of variance each component explains."""
    probs = report.probabilities[:, :, report.branch(branch)]  # [P, S, L, routes]
    prompts, steps = probs.shape[:2]
    vectors = probs.reshape(prompts * steps, -1).double()
    centred = vectors - vectors.mean(dim=0, keepdim=True)
    _, singular, right = torch.linalg.svd(centred, full_matrices=False)
    components = min(2, right.shape[0])
    coords = torch.zeros(prompts * steps, 2, dtype=torch.float64)
    coords[:, :components] = centred @ right[:components].T
    variance = singular.square()
    total = float(variance.sum())
    explained = [float(variance[i]) / total if i < len(variance) and total > 0 else 0.0 for i in range(2)]
    return coords.reshape(prompts, steps, 2).float(), explained


def embedding(report: RouterReport, branch: str = "cond", *, size: tuple[int, int] = EMBEDDING_SIZE) -> Image.Image:
    """The router vectors of every prompt and step in 2-D (PCA), coloured by prompt, as an RGB image."""
    coords, explained = embedding_coordinates(report, branch)
    figure = _figure(size)
    axes = figure.add_axes((0.1, 0.1, 0.55, 0.8))
    palette = _palette(len(report.prompts))
    for index, prompt in enumerate(report.prompts):
        colour = palette[index].tolist()
        xs, ys = coords[index, :, 0].tolist(), coords[index, :, 1].tolist()
        axes.plot(xs, ys, color=colour, linewidth=0.8, alpha=0.6)
        axes.scatter(xs, ys, color=colour, s=14, label=_clip(prompt, 40))
        axes.scatter(xs[:1], ys[:1], facecolors="none", edgecolors=[colour], s=90, linewidths=1.2)
        axes.scatter(xs[-1:], ys[-1:], color=[colour], marker="*", s=120)
    axes.set_xlabel(f"PC 1 ({explained[0]:.0%} of the variance)")
    axes.set_ylabel(f"PC 2 ({explained[1]:.0%} of the variance)")
    axes.set_title(f"router vectors per prompt and step ({branch}; ○ first step, ★ last)", fontsize=10)
    axes.grid(alpha=0.3)
    figure.legend(loc="upper left", bbox_to_anchor=(0.67, 0.9), fontsize=8, title="prompt")
    return _to_image(figure)
