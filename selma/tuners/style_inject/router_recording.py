"""Record the router probabilities p of StyleInject layers while a model runs (for heatmaps and embeddings).

    with record_router(pipe.unet) as recorder:
        pipe(prompts, num_inference_steps=20)
    recorder.probs["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"]  # [tensor(batch, n), ...]

Every routed forward of a layer appends one [batch, n] tensor, in call order: with one UNet call per
denoising step, entry k of every layer is step k, and with classifier-free guidance the batch holds the
uncond and cond halves as the sampler concatenated them. A stacked adapter (`num_experts` K > 1) records
[batch, K·n]: one softmax per sub-expert's group of n, each group summing to 1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from .state_dict import style_inject_layers


@dataclass
class RouterRecorder:
    """What `record_router` collected: `probs[layer_name]` is one [batch, n] tensor per forward, in call order."""

    adapter_name: str
    device: torch.device | None = None
    probs: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    def observe(self, layer_name: str, adapter_name: str, probs: torch.Tensor) -> None:
        if adapter_name != self.adapter_name:
            return
        probs = probs.detach()
        self.probs.setdefault(layer_name, []).append(probs if self.device is None else probs.to(self.device))

    @property
    def layer_names(self) -> list[str]:
        """Layers that routed at least once, in the order they first did."""
        return list(self.probs)

    def stacked(self, layer_name: str) -> torch.Tensor:
        """One layer's record as a float32 CPU tensor [calls, batch, n] (calls must share the batch size)."""
        return torch.stack([p.float().cpu() for p in self.probs[layer_name]])

    def clear(self) -> None:
        self.probs.clear()


def _routed_adapters(layers: Mapping[str, nn.Module]) -> list[str]:
    return sorted({adapter for layer in layers.values() for adapter in layer.styleinject_router})


@contextmanager
def record_router(
    source: nn.Module | Mapping[str, nn.Module],
    adapter_name: str | None = None,
    *,
    device: str | torch.device | None = None,
) -> Iterator[RouterRecorder]:
    """Record the router of every StyleInject layer of `source` until the block exits.

    `source` is a model (its StyleInject layers are found by name) or a `{name: layer}` mapping, e.g. the
    layers a ComfyUI loader object-patched in. `adapter_name` may be left out when a single adapter has a
    router. `device`: where recorded tensors go (None keeps them where they were computed, with no sync).
    """
    layers = style_inject_layers(source) if isinstance(source, nn.Module) else dict(source)
    if not layers:
        raise ValueError("no StyleInject layers to record: inject a StyleInject adapter into the model first")
    routed = _routed_adapters(layers)
    if adapter_name is None:
        if len(routed) != 1:
            raise ValueError(
                f"record_router needs adapter_name when the model has {len(routed)} adapters with a router "
                f"({routed}); pass one of them"
                if routed
                else "no StyleInject adapter here has a router (they were made with use_dma=False): nothing to record"
            )
        adapter_name = routed[0]
    elif adapter_name not in routed:
        raise ValueError(
            f"no StyleInject adapter {adapter_name!r} with a router in this model; adapters with a router: {routed}"
        )
    recorder = RouterRecorder(adapter_name, torch.device(device) if device is not None else None)
    attached = []
    for name, layer in layers.items():

        def observer(adapter: str, probs: torch.Tensor, _name: str = name) -> None:
            recorder.observe(_name, adapter, probs)

        layer.router_observers.append(observer)
        attached.append((layer, observer))
    try:
        yield recorder
    finally:
        for layer, observer in attached:
            layer.router_observers.remove(observer)
