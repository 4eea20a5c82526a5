"""TrainConfig: SELMA's recipe as defaults, and one clear error per impossible setting."""

from __future__ import annotations

import math

import pytest

from selma.training.config import TrainConfig


def test_defaults_are_selmas_recipe():
    c = TrainConfig()
    assert (c.method, c.rank, c.alpha, c.init) == ("lora", 128, 128.0, "gaussian")
    assert c.target_modules == ("to_q", "to_k", "to_v", "to_out.0")
    assert (c.adam_betas, c.weight_decay, c.adam_epsilon) == ((0.9, 0.999), 1e-2, 1e-8)
    assert (c.learning_rate, c.lr_warmup_steps, c.max_grad_norm) == (3e-4, 0, 1.0)
    assert (c.batch_size, c.grad_accum, c.effective_batch) == (16, 4, 64)
    assert (c.steps, c.save_every, c.preview_every, c.resolution) == (5000, 500, 0, 512)
    assert (c.mixed_precision, c.gradient_checkpointing, c.cache_latents, c.cache_text) == ("auto", False, True, True)


def test_auto_precision_is_fp16_on_cuda_and_fp32_elsewhere():
    import torch

    c = TrainConfig()
    assert (c.resolved_mixed_precision("cuda"), c.weight_dtype("cuda")) == ("fp16", torch.float16)
    assert (c.resolved_mixed_precision("cpu"), c.weight_dtype("cpu")) == ("no", torch.float32)
    assert TrainConfig(mixed_precision="bf16").weight_dtype("cpu") == torch.bfloat16


def test_lists_become_tuples_and_json_round_trips():
    c = TrainConfig(target_modules=["to_q", "to_v"], preview_prompts=["a red cube"], adam_betas=[0.8, 0.99])
    assert c.target_modules == ("to_q", "to_v") and c.adam_betas == (0.8, 0.99)
    assert TrainConfig.from_json(c.to_json()) == c


def test_replay_differences_name_the_fields_that_change_the_run():
    a, b = TrainConfig(rank=4), TrainConfig(rank=8, learning_rate=1e-3, steps=10)
    assert a.replay_differences(b) == {"rank": (4, 8)}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "dora"}, r"method='dora' is not supported; use one of \('lora', 'styleinject'\)"),
        ({"init": "zeros"}, r"init='zeros' is not supported; use one of \('gaussian', 'kaiming'\)"),
        ({"mixed_precision": "fp8"}, r"mixed_precision='fp8' is not supported"),
        ({"target_modules": ()}, r"target_modules=\(\) must be non-empty module names"),
        ({"target_modules": "to_q"}, r"target_modules='to_q' must be a sequence"),
        ({"preview_prompts": ("",)}, r"preview_prompts=\('',\) must be non-empty strings"),
        ({"rank": 0}, r"rank=0 must be an integer >= 1"),
        ({"batch_size": 0}, r"batch_size=0 must be an integer >= 1"),
        ({"grad_accum": 0}, r"grad_accum=0 must be an integer >= 1"),
        ({"steps": 0}, r"steps=0 must be an integer >= 1"),
        ({"preview_inference_steps": 0}, r"preview_inference_steps=0 must be an integer >= 1"),
        ({"save_every": -1}, r"save_every=-1 must be an integer >= 0"),
        ({"preview_every": -5}, r"preview_every=-5 must be an integer >= 0"),
        ({"lr_warmup_steps": -1}, r"lr_warmup_steps=-1 must be an integer >= 0"),
        ({"seed": -1}, r"seed=-1 must be an integer >= 0"),
        ({"resolution": 500}, r"resolution=500 must be a positive multiple of 8"),
        ({"alpha": 0}, r"alpha=0 must be a finite number > 0"),
        ({"learning_rate": math.nan}, r"learning_rate=nan must be a finite number > 0"),
        ({"adam_betas": (0.9, 1.0)}, r"adam_betas=\(0.9, 1.0\) must be two numbers in \[0, 1\)"),
        ({"weight_decay": -0.1}, r"weight_decay=-0.1 must be a finite number >= 0"),
        ({"adam_epsilon": 0.0}, r"adam_epsilon=0.0 must be a finite number > 0"),
        ({"max_grad_norm": -1.0}, r"max_grad_norm=-1.0 must be >= 0 \(0 = no clipping\)"),
    ],
)
def test_impossible_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)
