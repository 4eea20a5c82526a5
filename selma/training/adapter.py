"""Putting the trainable adapter (LoRA or StyleInject) into a backend's module with PEFT, and taking it out again.

The trainer borrows the module (in ComfyUI it is the user's loaded model), so everything here is
reversible: `injected_adapter` freezes the base, injects the adapter the config's `method` names, and on exit
removes every PEFT layer it added and restores each parameter's `requires_grad`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch
from torch import nn

from .config import TrainConfig

ADAPTER_NAME = "selma"
_ADAPTABLE = (nn.Linear, nn.Conv2d)


def _short_name(name: str) -> str:
    """`...attn1.to_q` -> `to_q`; `...attn1.to_out.0` -> `to_out.0` (a target that would match it)."""
    parts = name.split(".")
    return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


def check_target_modules(module: nn.Module, targets: tuple[str, ...]) -> list[str]:
    """The names of the modules `targets` select (PEFT's rule: a name equal to a target or ending in
    '.' + target). Raise ValueError if a target matches nothing, or matches a layer LoRA cannot adapt."""
    named = dict(module.named_modules())
    matched: list[str] = []
    missing = []
    for target in targets:
        hits = [name for name in named if name == target or name.endswith("." + target)]
        if not hits:
            missing.append(target)
        matched += hits
    linear = [name for name, m in named.items() if isinstance(m, _ADAPTABLE)]
    if missing:
        suffixes = list(dict.fromkeys(_short_name(n) for n in linear))
        raise ValueError(
            f"target_modules {missing} match no module of {type(module).__name__}; a target matches a module whose "
            f"name ends with it. Linear/Conv2d layers here end with {suffixes[:16]}"
            f"{' ...' if len(suffixes) > 16 else ''} ({len(linear)} layers, first: {linear[:3]})"
        )
    wrong = [name for name in matched if not isinstance(named[name], _ADAPTABLE)]
    if wrong:
        raise ValueError(
            f"target_modules select {wrong[0]!r}, a {type(named[wrong[0]]).__name__}; LoRA adapts Linear and Conv2d "
            f"layers only — name the projections inside it, e.g. {[_short_name(n) for n in linear[:4]]}"
        )
    return list(dict.fromkeys(matched))


def adapter_config(backend, config: TrainConfig) -> TrainConfig:
    """`config` with its target_modules as the backend's module names them: a backend whose module fuses
    layers (ComfyUI's FLUX: q, k, v in one qkv) maps the diffusers names (`backend.adapter_targets`)."""
    if not hasattr(backend, "adapter_targets"):
        return config
    return dataclasses.replace(config, target_modules=backend.adapter_targets(config.target_modules))


def _lora_config(config: TrainConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        init_lora_weights="gaussian" if config.init == "gaussian" else True,
        target_modules=list(config.target_modules),
        lora_dropout=0.0,
        bias="none",
    )


def style_inject_config(config: TrainConfig):
    """The `StyleInjectConfig` a `method='styleinject'` TrainConfig trains (its A_i re-drawn per `config.init`)."""
    from ..tuners.style_inject import StyleInjectConfig

    return StyleInjectConfig(
        r=config.rank,
        num_styles=config.num_styles,
        alpha=config.alpha,
        target_modules=list(config.target_modules),
        use_dma=config.use_dma,
        use_sta=config.use_sta,
    )


def adapter_parameters(module: nn.Module) -> dict[str, nn.Parameter]:
    """The trainable adapter parameters by name (the keys of a checkpoint's adapter file)."""
    # PEFT names hold the adapter name as one segment: `...to_q.lora_A.selma.weight`, `...to_q.styleinject_down.selma`.
    return {
        name: p
        for name, p in module.named_parameters()
        if ADAPTER_NAME in name.split(".") and ("lora_" in name or "styleinject_" in name)
    }


def _adapters_of(layer: nn.Module) -> list[str]:
    """The adapter names a PEFT layer holds (LoRA keeps them in lora_A, StyleInject in styleinject_down)."""
    return list(getattr(layer, "lora_A", None) or getattr(layer, "styleinject_down", None) or {})


def remove_adapter(module: nn.Module, adapter_name: str = ADAPTER_NAME) -> None:
    """Take `adapter_name` out of every PEFT layer; a layer left with no adapter becomes its base layer again."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, layer in list(module.named_modules()):
        if not isinstance(layer, BaseTunerLayer) or adapter_name not in _adapters_of(layer):
            continue
        others = [a for a in _adapters_of(layer) if a != adapter_name]
        if others:
            layer.delete_adapter(adapter_name)
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent_name) if parent_name else module, child, layer.get_base_layer())
    config = getattr(module, "peft_config", None)
    if isinstance(config, dict):
        config.pop(adapter_name, None)
        if not config:
            del module.peft_config


def _peft_config(config: TrainConfig):
    return style_inject_config(config) if config.method == "styleinject" else _lora_config(config)


def _gaussian_style_inject_downs(params: dict[str, nn.Parameter], rank: int) -> None:
    """SELMA's gaussian init for StyleInject's A_i too (A ~ N(0, 1/r), as PEFT's 'gaussian' LoRA init); drawn on
    the CPU from torch's global generator, which the caller has seeded, so the seed decides it on every device."""
    with torch.no_grad():
        for name in sorted(params):
            if name.rsplit(".", 2)[-2] == "styleinject_down":
                params[name].copy_(torch.empty(params[name].shape).normal_(std=1 / rank))


@contextlib.contextmanager
def injected_adapter(module: nn.Module, config: TrainConfig) -> Iterator[dict[str, nn.Parameter]]:
    """Freeze `module`, inject a fresh adapter of `config.method` (initialised from `config.seed`), yield its fp32
    parameters; on exit remove it and restore every `requires_grad` flag as it was."""
    from peft import inject_adapter_in_model

    remove_adapter(module)  # a run that crashed in this process may have left one behind
    trainable_before = {name for name, p in module.named_parameters() if p.requires_grad}
    module.requires_grad_(False)
    try:
        # PEFT initialises on the CPU from torch's global generator: seed it, and leave the caller's stream as it was.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(config.seed)
            inject_adapter_in_model(_peft_config(config), module, adapter_name=ADAPTER_NAME)
            params = adapter_parameters(module)
            if config.method == "styleinject" and config.init == "gaussian":
                _gaussian_style_inject_downs(params, config.rank)
        for p in params.values():
            p.requires_grad_(True)
            p.data = p.data.float()  # the base may be fp16/bf16; adapters train in fp32
        yield params
    finally:
        remove_adapter(module)
        for name, p in module.named_parameters():
            p.requires_grad_(name in trainable_before)


injected_lora = injected_adapter  # the name from before StyleInject could be trained
