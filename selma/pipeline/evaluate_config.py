"""The [evaluate] and [joint] sections of a run config.

    [joint]                  # SELMA's baseline: one LoRA trained on the union of all skills' datasets
    enabled = true           # + any TrainConfig field over [train]; writes experts/joint.safetensors

    [evaluate]
    enabled = true
    prompts = 8              # held-out prompts per skill (shared with [compare], which shows the first rows)
    metrics = ["dsg", "vqascore", "clipscore"]
    answerer = {backend = "transformers", model = "Qwen/Qwen2-VL-2B-Instruct"}   # answers DSG + VQAScore questions
    clip_model = "openai/clip-vit-large-patch14"
    llm = {backend = "openai", model = "gpt-4o-mini"}   # writes DSG questions; default: the run's [llm]
    steps = 20               # + guidance, seed, resolution: how the variants render the prompts

The stage runs when the section is there (and enabled is not false). On the tiny model (`selma demo`) the answerer
and CLIP default to 'tiny': random models built into RUN_DIR/models/, so the stage's plumbing runs offline; their
numbers say nothing about faithfulness.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..evaluation.answerer import AnswererConfig
from ..evaluation.comparison import CompareConfig
from ..evaluation.scoring import METRICS, EvalConfig
from ..llm import LLMConfig
from ..training.config import TrainConfig

JOINT_NAME = "joint"  # experts/joint.safetensors
TINY = "tiny"
SHAPES_CHECKER = {"backend": "programmatic", "model": "shapes"}  # selma.shapes.checker
SHAPES_METRICS = ("dsg", "vqascore")


def register_checker_of(answerer: AnswererConfig | None) -> None:
    """Import the programmatic checker an answerer names, which registers it (the shapes world's, for now)."""
    if answerer is not None and answerer.backend == "programmatic" and answerer.model == SHAPES_CHECKER["model"]:
        from ..shapes import checker  # noqa: F401  (relative: ComfyUI imports its own copy of the core)


STAGE_KEYS = ("enabled", "prompts", "metrics", "answerer", "clip_model", "llm", "threshold")


@dataclass(frozen=True)
class EvaluateStage:
    prompts: int = field(default=8, metadata={"help": "held-out prompts per skill"})
    metrics: tuple[str, ...] = METRICS
    answerer: AnswererConfig | None = None
    clip_model: str = ""
    llm: LLMConfig | None = None  # None: the run's [llm]
    threshold: float = 0.5
    render: CompareConfig = CompareConfig()

    def __post_init__(self) -> None:
        if isinstance(self.prompts, bool) or not isinstance(self.prompts, int) or not 1 <= self.prompts <= 1000:
            raise ValueError(f"[evaluate] prompts={self.prompts!r} must be an integer in 1..1000 (per skill)")

    def to_json(self) -> dict[str, Any]:
        """The section as a config file spells it (parse_evaluate_section reads it back)."""
        data = {"enabled": True, "prompts": self.prompts, "metrics": list(self.metrics), "clip_model": self.clip_model,
                "threshold": self.threshold, **asdict(self.render)}  # fmt: skip
        if self.answerer is not None:
            data["answerer"] = asdict(self.answerer)
        if self.llm is not None:
            data["llm"] = asdict(self.llm)
        return data


def parse_joint_section(data: dict[str, Any], train: dict[str, Any]) -> TrainConfig | None:
    """The [joint] section (keys already checked) over [train]'s fields; None when disabled (the default)."""
    data = dict(data)
    if not data.pop("enabled", False):
        return None
    try:
        return TrainConfig(**{**train, **data, "method": "lora"})
    except (TypeError, ValueError) as e:
        raise ValueError(f"[joint]: {e}") from None


def joint_keys() -> list[str]:
    return ["enabled", *(f.name for f in fields(TrainConfig) if f.name != "method")]


def evaluate_keys() -> list[str]:
    return [*STAGE_KEYS, *(f.name for f in fields(CompareConfig))]


def parse_evaluate_section(
    data: dict[str, Any], *, tiny_model: bool, shapes_model: bool = False
) -> EvaluateStage | None:
    """The [evaluate] section (keys already checked); None when the section is absent or enabled = false. On the
    tiny model the answerer and CLIP default to tiny random models; on the shapes model the answerer defaults to
    the world's exact checker and the metrics to DSG and VQAScore (a CLIP knows nothing of this world); on a real
    model they must be named."""
    data = dict(data)
    enabled = data.pop("enabled", None)
    if enabled is False or (enabled is None and not data):
        return None
    metrics = tuple(data.pop("metrics", SHAPES_METRICS if shapes_model else METRICS))
    answerer = data.pop("answerer", None)
    if answerer is None and tiny_model:
        answerer = {"backend": "transformers", "model": TINY}
    if answerer is None and shapes_model:
        answerer = dict(SHAPES_CHECKER)
    if isinstance(answerer, dict):
        if "api_key" in answerer:
            raise ValueError(
                "[evaluate] answerer.api_key: never put an API key in a config file; set api_key_env to the NAME "
                "of the environment variable that holds it"
            )
        try:
            answerer = AnswererConfig(**answerer)
        except (TypeError, ValueError) as e:
            raise ValueError(f"[evaluate] answerer: {e}") from None
    elif answerer is not None:
        raise ValueError("[evaluate] answerer must be a table, e.g. {backend = 'transformers', model = '...'}")
    clip_model = data.pop("clip_model", TINY if tiny_model else "")
    llm = data.pop("llm", None)
    if llm is not None:
        if not isinstance(llm, dict) or "api_key" in llm:
            raise ValueError("[evaluate] llm must be a table of LLMConfig fields (the key only by api_key_env)")
        try:
            llm = LLMConfig(**llm)
        except (TypeError, ValueError) as e:
            raise ValueError(f"[evaluate] llm: {e}") from None
    stage = {k: data.pop(k) for k in ("prompts", "threshold") if k in data}
    try:
        render = CompareConfig(**data)
        config = EvaluateStage(metrics=metrics, answerer=answerer, clip_model=clip_model, llm=llm, render=render,
                               **stage)  # fmt: skip
        EvalConfig(metrics=metrics, answerer=answerer, clip_model=clip_model, threshold=config.threshold)
    except (TypeError, ValueError) as e:
        raise ValueError(f"[evaluate]: {e}") from None
    return config
