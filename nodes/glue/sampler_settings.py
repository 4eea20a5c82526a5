"""The sampler settings behind a node's IMAGE input, read from the queued graph (ComfyUI's hidden PROMPT): what
SELMA Dataset Writer records per image (seed, steps, guidance, sampler, scheduler, model), as `selma images` does.

Walks upstream from the input through image/latent nodes (VAE Decode, upscales, ...) to the first sampler. A value
that arrives through a link (a seed from a primitive node wired in, say) cannot be known here and is left out;
`settings_note` says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# class_type -> {our key: the sampler's input name}
SAMPLERS = {
    "KSampler": {"seed": "seed", "steps": "steps", "guidance": "cfg", "sampler": "sampler_name",
                 "scheduler": "scheduler", "denoise": "denoise"},
    "KSamplerAdvanced": {"seed": "noise_seed", "steps": "steps", "guidance": "cfg", "sampler": "sampler_name",
                         "scheduler": "scheduler"},
}  # fmt: skip
_MODEL_LOADERS = {
    "CheckpointLoaderSimple": "ckpt_name",
    "UNETLoader": "unet_name",
    "SelmaLoadShippedModel": "model_name",
}
_UPSTREAM = ("samples", "images", "image", "pixels", "latent", "latent_image")  # how images/latents flow


def _link(value: Any) -> str | None:
    return str(value[0]) if isinstance(value, list) and len(value) == 2 else None


def _upstream_model(prompt: Mapping, node: Mapping, depth: int = 0) -> str | None:
    """The file or name of the model a sampler uses (through LoRA loaders and other MODEL patches)."""
    source = _link(node.get("inputs", {}).get("model"))
    if source is None or source not in prompt or depth > 32:
        return None
    upstream = prompt[source]
    key = _MODEL_LOADERS.get(upstream.get("class_type"))
    if key is not None:
        value = upstream["inputs"].get(key)
        return value if isinstance(value, str) else None
    return _upstream_model(prompt, upstream, depth + 1)


def sampler_settings(prompt: Mapping | None, node_id: str | None, input_name: str = "images") -> tuple[dict, str]:
    """({seed, steps, guidance, sampler, scheduler, model, ...} that are known, a note on what is not)."""
    if not prompt or node_id is None or str(node_id) not in prompt:
        return {}, "no graph to read the sampler settings from"
    current = _link(prompt[str(node_id)].get("inputs", {}).get(input_name))
    for _ in range(64):
        if current is None or current not in prompt:
            break
        node = prompt[current]
        names = SAMPLERS.get(node.get("class_type"))
        if names is not None:
            inputs = node.get("inputs", {})
            known = {
                key: inputs[name] for key, name in names.items() if name in inputs and _link(inputs[name]) is None
            }
            linked = sorted(key for key, name in names.items() if _link(inputs.get(name)) is not None)
            model = _upstream_model(prompt, node)
            if model:
                known["model"] = model
            note = f"linked in the graph, not recorded: {', '.join(linked)}" if linked else ""
            return known, note
        inputs = node.get("inputs", {})
        current = next((_link(inputs[k]) for k in _UPSTREAM if _link(inputs.get(k)) is not None), None)
    return {}, "no KSampler upstream of the images: seed and sampler settings unknown"
