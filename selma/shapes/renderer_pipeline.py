"""The shapes world's renderer dressed as a text-to-image pipeline: the "stronger model" of the weak-to-strong
comparison (`[images] model = "renderer"` in a run config): it draws exactly what each prompt of the world says.

It takes the arguments the dataset stage passes a diffusers pipeline (prompt list, one CPU generator per prompt,
width/height) and returns `.images`; steps and guidance mean nothing to it and are ignored. The layout of each
picture is drawn from its generator's seed, so a dataset rendered twice is the same bit for bit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import SelmaError
from .model import RESOLUTION
from .parse import parse_prompt
from .world import layout, render

RENDERER_MODEL = "renderer"  # the name `[images] model` and `selma images --model` give the renderer


@dataclass
class RendererOutput:
    images: list
    nsfw_content_detected: None = None


class RendererPipeline:
    components: dict = {}
    device = "cpu"
    dtype = None

    def set_progress_bar_config(self, **_) -> None:
        pass

    def to(self, *_, **__) -> RendererPipeline:
        return self

    def __call__(self, prompt, num_inference_steps: int = 1, guidance_scale: float = 0.0, generator=None,
                 output_type: str = "pil", width: int | None = None, height: int | None = None,
                 negative_prompt=None) -> RendererOutput:  # fmt: skip
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        generators = generator if isinstance(generator, list) else [generator] * len(prompts)
        size = width or height or RESOLUTION
        if height is not None and width is not None and height != width:
            raise ValueError(f"the shapes renderer draws square pictures; got {width} x {height}")
        images = []
        for text, gen in zip(prompts, generators, strict=True):
            spec = parse_prompt(text)
            if spec is None:
                raise SelmaError(
                    f"the shapes renderer draws only prompts of the shapes world; {text!r} is not one (use the "
                    "shapes_* skills with the template LLM, or a real model)"
                )
            seed = gen.initial_seed() if gen is not None else 0
            images.append(render(layout(spec, random.Random(seed)), size))
        return RendererOutput(images)


def load_data_pipeline(model: str, *, device: str = "auto", dtype: str = "auto", config_folder=None):
    """What renders a dataset: the renderer for 'renderer', else `selma.models.pipelines.load_pipeline(model)`."""
    if model == RENDERER_MODEL:
        return RendererPipeline()
    from ..models.pipelines import load_pipeline

    return load_pipeline(model, device=device, dtype=dtype, config_folder=config_folder)
