"""The HF Accelerate side of a training run: the `Accelerator` for a config, and data parallel's gradient average."""

from __future__ import annotations

import torch

from .config import TrainConfig


def make_accelerator(config: TrainConfig, device: torch.device):
    """The run's Accelerator (mixed precision, gradient accumulation, CPU or not), made again in a single
    process whose global Accelerate state was set up with other settings."""
    from accelerate import Accelerator, PartialState
    from accelerate.state import AcceleratorState, GradientState

    kwargs = {
        "mixed_precision": config.resolved_mixed_precision(device.type),
        "gradient_accumulation_steps": config.grad_accum,
        "cpu": device.type == "cpu",
    }
    try:
        return Accelerator(**kwargs)
    except ValueError as e:
        # Accelerate keeps one global state per process and refuses another precision; a single-process host
        # (ComfyUI, a notebook) training twice with different settings is fine to reset. Under `accelerate
        # launch` the state belongs to the launcher: keep its error.
        if "already been initialized" not in str(e) or PartialState().num_processes > 1:
            raise
        AcceleratorState._reset_state()
        GradientState._reset_state()
        return Accelerator(**kwargs)


def average_gradients(accelerator, params: list[torch.nn.Parameter]) -> None:
    """Average the adapter gradients across processes with one flat all-reduce."""
    grads = [p.grad for p in params]
    flat = accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
