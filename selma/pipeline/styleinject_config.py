"""The [styleinject] section of a run config: which skill's dataset trains the StyleInject expert, its
TrainConfig over [train], and the router inspection's size. The stage itself is styleinject_stage.py."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..training.config import TrainConfig

STAGE_KEYS = ("enabled", "skill", "inspect_prompts", "inspect_steps")


@dataclass(frozen=True)
class StyleInjectStage:
    skill: str = field(default="", metadata={"help": "the skill whose dataset trains the expert ('' = the first)"})
    train: TrainConfig = TrainConfig(method="styleinject")
    inspect_prompts: int = field(default=2, metadata={"help": "held-out prompts sampled for the router inspection"})
    inspect_steps: int = field(default=20, metadata={"help": "denoising steps of the inspection"})

    def __post_init__(self) -> None:
        for name in ("inspect_prompts", "inspect_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                raise ValueError(f"[styleinject] {name}={value!r} must be an integer in 1..1000")


def parse_styleinject_section(
    data: dict[str, Any], train: dict[str, Any], skills: list[str]
) -> StyleInjectStage | None:
    """The [styleinject] section (keys already checked) over the [train] section's fields; None when disabled."""
    data = dict(data)
    if not data.pop("enabled", False):
        return None
    skill = data.pop("skill", "") or skills[0]
    if skill not in skills:
        raise ValueError(f"[styleinject] skill={skill!r} is not one of the run's skills {skills}")
    stage = {k: data.pop(k) for k in ("inspect_prompts", "inspect_steps") if k in data}
    try:
        config = TrainConfig(**{**train, **data, "method": "styleinject"})
    except (TypeError, ValueError) as e:
        raise ValueError(f"[styleinject]: {e}") from None
    return StyleInjectStage(skill=skill, train=config, **stage)


def allowed_keys() -> list[str]:
    return [*STAGE_KEYS, *(f.name for f in fields(TrainConfig) if f.name != "method")]
