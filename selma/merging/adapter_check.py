"""The linear self-check on a real model: the merged expert applied alone changes a diffusers UNet's output exactly
as every input expert applied at once with its weight (diffusers `set_adapters`), for `linear` and `cat`.

Unlike `self_checks` (which compares ΔW matrices), this goes through PEFT's layers and diffusers' adapter
weights, so it also catches a wrong scale, a transposed factor or a module the model names differently.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

from ..experts.lora_expert import LoraExpert
from ..experts.lora_peft import apply_lora_expert
from .config import MergeConfig
from .self_checks import CheckResult

log = logging.getLogger(__name__)

ADAPTER_PREFIX = "selma_check_"
# ‖merged − together‖ / ‖together − base‖, by the UNet's dtype: float32 lands near 1e-6, half precision
# rounds every activation.
TOLERANCES = {torch.float64: 1e-8, torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 5e-2}


def check_linear_against_adapters(
    pipe_or_unet: Any,
    experts: list[LoraExpert],
    weights: list[float] | None,
    merged: LoraExpert,
    *,
    tolerance: float | None = None,
    seed: int = 0,
) -> CheckResult:
    """Run the UNet on fixed inputs with every expert as its own adapter, weighted by `weights` (None: the merge
    recipe's weights, else 1/K), and with `merged` alone; the outputs must agree within `tolerance` relative to
    the experts' effect on the output. The UNet is left with the adapters it had (its active ones restored).
    """
    unet = getattr(pipe_or_unet, "unet", pipe_or_unet)
    if weights is None:
        weights = merged.metadata.get("merge", {}).get("weights")
    weights = MergeConfig("linear", weights=weights).resolve_weights(len(experts))
    names = [f"{ADAPTER_PREFIX}{k}" for k in range(len(experts))]
    merged_name = f"{ADAPTER_PREFIX}merged"
    existing = dict(getattr(unet, "peft_config", None) or {})
    clash = [name for name in (*names, merged_name) if name in existing]
    if clash:
        raise ValueError(f"the UNet already has an adapter named {clash[0]!r}; remove it before the check")
    previous = unet.active_adapters() if existing else []
    tolerance = TOLERANCES.get(unet.dtype, TOLERANCES[torch.bfloat16]) if tolerance is None else tolerance
    inputs = fixed_unet_inputs(unet, seed)
    added: list[str] = []
    try:
        with warnings.catch_warnings():
            # PEFT warns on every adapter after the first; several adapters are the point here.
            warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
            for name, expert in [*zip(names, experts, strict=True), (merged_name, merged)]:
                apply_lora_expert(unet, expert, adapter_name=name)
                added.append(name)
        outputs = {}
        # Weight 0 on every expert is the base model: the reference the experts' effect is measured against.
        for label, active, scales in (
            ("base", names, [0.0] * len(names)),
            ("together", names, weights),
            ("merged", [merged_name], [1.0]),
        ):
            unet.set_adapters(active, scales)
            outputs[label] = _forward(unet, inputs)
    finally:
        if previous:  # first, so that deleting ours never deletes an active adapter
            unet.set_adapters(previous)
        if added:
            unet.delete_adapters(added)
    effect = torch.linalg.vector_norm(outputs["together"] - outputs["base"]).item()
    error = torch.linalg.vector_norm(outputs["merged"] - outputs["together"]).item() / (effect or 1.0)
    problems = () if effect > 0 else ("the experts do not change the output, so the check shows nothing",)
    passed = not problems and error <= tolerance
    log.info("adapter check: relative error %.3e (tolerance %g)", error, tolerance)
    return CheckResult(
        "linear equals the experts applied together (diffusers set_adapters)", passed, error, None, tolerance, problems
    )


def fixed_unet_inputs(unet: torch.nn.Module, seed: int = 0) -> dict[str, Any]:
    """Small seeded inputs for one UNet forward: latents, a timestep, text states and SDXL's added conditions."""
    config = unet.config
    generator = torch.Generator().manual_seed(seed)
    # The smallest latent side the UNet's down-sampling accepts, capped for speed on CPU.
    factor = 2 ** (len(config.block_out_channels) - 1)
    side = max(factor, min(int(config.sample_size), 32) // factor * factor)
    dtype, device = unet.dtype, unet.device

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator).to(device=device, dtype=dtype)

    inputs: dict[str, Any] = {
        "sample": randn(1, config.in_channels, side, side),
        "timestep": torch.tensor([500], device=device),
        "encoder_hidden_states": randn(1, 8, config.cross_attention_dim),
    }
    if config.addition_embed_type == "text_time":
        time_ids = 6  # SDXL: original size, crop and target size, two numbers each
        text_width = config.projection_class_embeddings_input_dim - time_ids * config.addition_time_embed_dim
        inputs["added_cond_kwargs"] = {"text_embeds": randn(1, text_width), "time_ids": randn(1, time_ids)}
    return inputs


def _forward(unet: torch.nn.Module, inputs: dict[str, Any]) -> torch.Tensor:
    with torch.no_grad():
        return unet(**inputs).sample.double()
