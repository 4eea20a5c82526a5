"""`TrainConfig`: one skill expert's training recipe. The defaults are SELMA's (LoRA r=128, alpha=128,
gaussian init on the UNet attention projections, AdamW 3e-4 constant, clip 1.0, effective batch 16 x 4,
5,000 steps, a checkpoint every 500, fp16 mixed precision with fp32 adapter weights on GPU).

`method="styleinject"` trains a StyleInject adapter (DESIGN §3.5) with the same recipe: `rank`, `alpha`,
`target_modules` and `init` keep their meaning (the rank of every A_i and of B; B and the hypernetwork start at
zero) and keep their LoRA defaults; the StyleInject paper's own setting is rank=32, alpha=32,
target_modules=("to_q", "to_v"), num_styles 4 or 16 — pass those to reproduce it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

METHODS = ("lora", "styleinject")
INITS = ("gaussian", "kaiming")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")

# Fields that decide the adapter's shape or the exact stream of examples, noise and timesteps: a resumed
# run must agree on them, or it would not continue the run it resumes.
REPLAY_FIELDS = (
    "method",
    "rank",
    "alpha",
    "init",
    "target_modules",
    "num_styles",
    "use_dma",
    "use_sta",
    "batch_size",
    "grad_accum",
    "resolution",
    "aspect_buckets",
    "bucket_step",
    "seed",
)
# StyleInject's fields and their defaults; a LoRA config must leave them so (they would describe nothing).
_STYLE_INJECT_DEFAULTS = {"num_styles": 4, "use_dma": True, "use_sta": True}


@dataclass(frozen=True)
class TrainConfig:
    method: str = field(default="lora", metadata={"help": "adapter kind: 'lora' or 'styleinject'"})
    rank: int = field(default=128, metadata={"help": "rank r (LoRA; StyleInject: of every A_i and of B)"})
    alpha: float = field(default=128.0, metadata={"help": "the update is scaled by alpha / rank"})
    init: str = field(
        default="gaussian",
        metadata={
            "help": "'gaussian' (SELMA: A ~ N(0, 1/r), B = 0) or 'kaiming' (PEFT's default); StyleInject: the A_i"
        },
    )
    num_styles: int = field(
        default=4, metadata={"help": "StyleInject only: n down-projections mixed by the router (1 with use_dma=False)"}
    )
    use_dma: bool = field(
        default=True, metadata={"help": "StyleInject only: the router (False = the paper's 'STA alone', num_styles=1)"}
    )
    use_sta: bool = field(
        default=True, metadata={"help": "StyleInject only: the AdaIN hypernetwork (False = the paper's 'DMA alone')"}
    )
    target_modules: tuple[str, ...] = field(
        default=("to_q", "to_k", "to_v", "to_out.0"),
        metadata={"help": "modules to adapt, matched by the end of their name (PEFT's rule)"},
    )
    learning_rate: float = field(default=3e-4, metadata={"help": "AdamW learning rate (constant after warmup)"})
    lr_warmup_steps: int = field(default=0, metadata={"help": "linear warmup steps from 0 to learning_rate"})
    adam_betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm; 0 = no clipping"})
    batch_size: int = field(default=16, metadata={"help": "examples per micro-batch and process"})
    grad_accum: int = field(default=4, metadata={"help": "micro-batches per optimizer step"})
    steps: int = field(default=5000, metadata={"help": "optimizer steps in total"})
    save_every: int = field(default=500, metadata={"help": "checkpoint every N steps; 0 = only at the end"})
    preview_every: int = field(default=0, metadata={"help": "render previews every N steps; 0 = never"})
    preview_prompts: tuple[str, ...] = field(
        default=(), metadata={"help": "prompts for previews; empty = the dataset's first two captions"}
    )
    preview_inference_steps: int = 20
    resolution: int = field(default=512, metadata={"help": "image side in pixels (resized, center-cropped)"})
    aspect_buckets: bool = field(
        default=False,
        metadata={
            "help": "train each image at the bucket nearest its aspect (about resolution^2 pixels, multiples of "
            "bucket_step, up to 2:1) instead of a center-cropped square; for datasets of mixed sizes"
        },
    )
    bucket_step: int = field(default=64, metadata={"help": "aspect buckets are multiples of this many pixels"})
    mixed_precision: str = field(
        default="auto", metadata={"help": "'auto' (fp16 on CUDA, fp32 elsewhere), 'no', 'fp16' or 'bf16'"}
    )
    gradient_checkpointing: bool = False
    cache_latents: bool = field(default=True, metadata={"help": "encode every image once, before training"})
    cache_text: bool = field(default=True, metadata={"help": "encode every caption once, before training"})
    seed: int = field(default=0, metadata={"help": "decides the adapter init and every example, noise, timestep"})

    def __post_init__(self) -> None:
        # Lists (from JSON, the CLI or a node) become tuples so the config stays hashable and comparable.
        for name in ("target_modules", "preview_prompts", "adam_betas"):
            value = getattr(self, name)
            if isinstance(value, str) or not hasattr(value, "__iter__"):
                raise ValueError(f"TrainConfig.{name}={value!r} must be a sequence, e.g. a list or tuple")
            object.__setattr__(self, name, tuple(value))
        self._check_choices()
        self._check_style_inject()
        self._check_counts()
        self._check_optimizer()

    def _check_choices(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"TrainConfig.method={self.method!r} is not supported; use one of {METHODS}")
        if self.init not in INITS:
            raise ValueError(f"TrainConfig.init={self.init!r} is not supported; use one of {INITS}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"TrainConfig.mixed_precision={self.mixed_precision!r} is not supported; use one of {MIXED_PRECISION}"
            )
        if not self.target_modules or not all(isinstance(t, str) and t.strip() for t in self.target_modules):
            raise ValueError(
                f"TrainConfig.target_modules={self.target_modules!r} must be non-empty module names, "
                "e.g. ('to_q', 'to_k', 'to_v', 'to_out.0')"
            )
        if not all(isinstance(p, str) and p.strip() for p in self.preview_prompts):
            raise ValueError(f"TrainConfig.preview_prompts={self.preview_prompts!r} must be non-empty strings")

    def _check_style_inject(self) -> None:
        if isinstance(self.num_styles, bool) or not isinstance(self.num_styles, int) or self.num_styles < 1:
            raise ValueError(f"TrainConfig.num_styles={self.num_styles!r} must be an integer >= 1")
        for name in ("use_dma", "use_sta"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r} must be True or False")
        if self.method != "styleinject":
            changed = {k: getattr(self, k) for k, v in _STYLE_INJECT_DEFAULTS.items() if getattr(self, k) != v}
            if changed:
                name, value = next(iter(changed.items()))
                raise ValueError(
                    f"TrainConfig.{name}={value!r} applies to method='styleinject' only (method is {self.method!r}); "
                    f"set method='styleinject', or leave {name} at its default {_STYLE_INJECT_DEFAULTS[name]!r}"
                )
            return
        if not self.use_dma and self.num_styles != 1:
            raise ValueError(
                f"TrainConfig.use_dma=False (the paper's 'STA alone') keeps one down-projection, so num_styles must "
                f"be 1, got num_styles={self.num_styles!r}"
            )
        if not self.use_dma and not self.use_sta:
            raise ValueError(
                "TrainConfig.use_dma=False with use_sta=False leaves a plain LoRA; keep one of them, or train "
                "method='lora'"
            )

    def _check_counts(self) -> None:
        positive = ("rank", "batch_size", "grad_accum", "steps", "preview_inference_steps")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name}={value!r} must be an integer >= 1")
        for name in ("save_every", "preview_every", "lr_warmup_steps", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"TrainConfig.{name}={value!r} must be an integer >= 0 (0 = off)")
        if self.resolution < 8 or self.resolution % 8:
            raise ValueError(
                f"TrainConfig.resolution={self.resolution!r} must be a positive multiple of 8 (pixels); "
                "SELMA trains SD1.x at 512"
            )
        step = self.bucket_step
        if isinstance(step, bool) or not isinstance(step, int) or step < 8 or step % 8:
            raise ValueError(f"TrainConfig.bucket_step={step!r} must be a multiple of 8 (pixels), e.g. 64")
        if self.aspect_buckets and self.resolution % step:
            raise ValueError(
                f"TrainConfig.resolution={self.resolution} is not a multiple of bucket_step={step}; aspect buckets "
                "are built around it (1024 with 64, as SDXL)"
            )

    def _check_optimizer(self) -> None:
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"TrainConfig.alpha={self.alpha!r} must be a finite number > 0 (SELMA: alpha = rank)")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"TrainConfig.learning_rate={self.learning_rate!r} must be a finite number > 0")
        if len(self.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.adam_betas):
            raise ValueError(f"TrainConfig.adam_betas={self.adam_betas!r} must be two numbers in [0, 1)")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"TrainConfig.weight_decay={self.weight_decay!r} must be a finite number >= 0")
        if not (math.isfinite(self.adam_epsilon) and self.adam_epsilon > 0):
            raise ValueError(f"TrainConfig.adam_epsilon={self.adam_epsilon!r} must be a finite number > 0")
        if not (math.isfinite(self.max_grad_norm) and self.max_grad_norm >= 0):
            raise ValueError(f"TrainConfig.max_grad_norm={self.max_grad_norm!r} must be >= 0 (0 = no clipping)")

    @property
    def effective_batch(self) -> int:
        """Examples per optimizer step on one process (times the number of processes under accelerate)."""
        return self.batch_size * self.grad_accum

    def resolved_mixed_precision(self, device_type: str) -> str:
        """What Accelerate gets: 'auto' is fp16 on CUDA (SELMA's setting) and full fp32 anywhere else."""
        if self.mixed_precision == "auto":
            return "fp16" if device_type == "cuda" else "no"
        return self.mixed_precision

    def weight_dtype(self, device_type: str):
        """The dtype the *frozen* base weights are kept in (adapters always train in fp32)."""
        import torch

        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(
            self.resolved_mixed_precision(device_type), torch.float32
        )

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replay_differences(self, other: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """The REPLAY_FIELDS on which `other` differs from this config: {field: (ours, theirs)}."""
        return {
            name: (getattr(self, name), getattr(other, name))
            for name in REPLAY_FIELDS
            if getattr(self, name) != getattr(other, name)
        }
