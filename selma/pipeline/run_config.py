"""The config of a whole SELMA run (`selma run CONFIG`): one JSON or TOML file, validated up front.

    run_dir = "runs/mine"
    skills = ["counting", "spatial"]        # built-in names, skill JSON files, or inline skill tables
    [llm]      # LLMConfig fields; the API key only by the NAME of its environment variable (api_key_env)
    [prompts]  # PromptGenConfig fields: count, threshold, seed, concurrency, ...
    [images]   # model ("tiny" = a tiny random SD model built into RUN_DIR/models/tiny-sd, "shapes" = the shipped
               # shapes model, "renderer" = the shapes world's renderer draws the data) + DatasetConfig fields
    [train]    # model (default: the images' model), device + TrainConfig fields (method, rank, steps, ...)
    [styleinject]  # enabled (default false), skill, inspect_prompts, inspect_steps + TrainConfig fields
    [merge]    # enabled + MergeConfig fields: method, weights, rank, density, seed
    [joint]    # enabled (default false) + TrainConfig fields: one LoRA on all skills' data (SELMA's baseline)
    [evaluate] # enabled, prompts, metrics, answerer, clip_model, llm + render fields (evaluate_config.py)
    [compare]  # enabled, prompts (held-out prompts per skill), steps, guidance, seed, resolution, held_out

Every mistake found is reported before any work starts: unknown keys (with the allowed ones), wrong types,
values a stage's own config rejects. Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from ..datasets.rendering import DatasetConfig
from ..evaluation.comparison import CompareConfig
from ..llm import LLMConfig
from ..merging.config import MergeConfig
from ..prompts.generation import PromptGenConfig
from ..prompts.skills import Skill, builtin_skill, load_skills_file
from ..shapes.renderer_pipeline import RENDERER_MODEL
from ..training.config import TrainConfig
from .evaluate_config import (
    JOINT_NAME,
    EvaluateStage,
    evaluate_keys,
    joint_keys,
    parse_evaluate_section,
    parse_joint_section,
)
from .styleinject_config import StyleInjectStage, allowed_keys, parse_styleinject_section

TINY_MODEL = "tiny"  # the model name that means "build the tiny random SD model into the run dir"
SHAPES_MODEL = "shapes"  # the shipped shapes-world model (selma.models.pipelines.NAMED_MODELS)
# RENDERER_MODEL ("renderer"): [images] only, the shapes world's renderer draws the data; [train] defaults to shapes
MERGED_NAME = "merged"  # experts/merged.safetensors
SECTIONS = (
    "run_dir", "skills", "llm", "prompts", "images", "train", "joint", "styleinject", "merge", "evaluate", "compare",
)  # fmt: skip


def _names(cls) -> list[str]:
    return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class CompareStage:
    """The comparison grid stage: which prompts (held out from training), and how to render them."""

    enabled: bool = True
    prompts: int = field(default=4, metadata={"help": "held-out prompts (grid rows) per skill"})
    render: CompareConfig = CompareConfig()
    held_out: dict[str, tuple[str, ...]] = field(
        default_factory=dict, metadata={"help": "skill -> your own held-out prompts (else written by the LLM)"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.prompts, bool) or not isinstance(self.prompts, int) or not 1 <= self.prompts <= 64:
            raise ValueError(f"[compare] prompts={self.prompts!r} must be an integer in 1..64 (rows per grid)")


@dataclass(frozen=True)
class RunConfig:
    run_dir: Path
    skills: tuple[Skill, ...]
    llm: LLMConfig = LLMConfig()
    prompts: PromptGenConfig = PromptGenConfig()
    image_model: str = TINY_MODEL
    images: DatasetConfig = DatasetConfig()
    train_model: str = TINY_MODEL
    train_device: str = "auto"
    filter_threshold: float = 0.0  # > 0: experts train only on images whose DSG is at least this (filtered/<skill>/)
    train: TrainConfig = TrainConfig()
    merge: MergeConfig | None = MergeConfig()
    compare: CompareStage | None = CompareStage()
    styleinject: StyleInjectStage | None = None
    joint: TrainConfig | None = None
    evaluate: EvaluateStage | None = None

    def __post_init__(self) -> None:
        names = [s.name for s in self.skills]
        if not names:
            raise ValueError("skills is empty; name at least one skill, e.g. skills = ['counting', 'spatial']")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"skills: {dupes} appear more than once; each skill trains one expert")
        for reserved in (MERGED_NAME, JOINT_NAME):
            if reserved in names:
                raise ValueError(
                    f"skills: a skill may not be named {reserved!r} (experts/{reserved}.safetensors is taken)"
                )
        unknown = sorted(set(self.compare.held_out) - set(names)) if self.compare else []
        if unknown:
            raise ValueError(f"[compare] held_out names skill(s) {unknown} that are not in skills {names}")

    def to_json(self) -> dict[str, Any]:
        """The resolved config, as written to RUN_DIR/run_config.json (no secrets: LLMConfig holds none)."""
        from dataclasses import asdict

        return json.loads(
            json.dumps(
                {
                    "run_dir": str(self.run_dir),
                    "skills": [s.to_dict() for s in self.skills],
                    "llm": asdict(self.llm),
                    "prompts": asdict(self.prompts),
                    "images": {
                        "model": self.image_model,
                        **asdict(self.images),
                        **({"filter_threshold": self.filter_threshold} if self.filter_threshold else {}),
                    },
                    "train": {"model": self.train_model, "device": self.train_device, **self.train.to_json()},
                    "styleinject": {"enabled": False}
                    if self.styleinject is None
                    else {
                        "enabled": True,
                        "skill": self.styleinject.skill,
                        "inspect_prompts": self.styleinject.inspect_prompts,
                        "inspect_steps": self.styleinject.inspect_steps,
                        **{k: v for k, v in self.styleinject.train.to_json().items() if k != "method"},
                    },
                    "merge": {"enabled": False} if self.merge is None else asdict(self.merge),
                    "joint": {"enabled": False}
                    if self.joint is None
                    else {"enabled": True, **{k: v for k, v in self.joint.to_json().items() if k != "method"}},
                    "evaluate": {"enabled": False} if self.evaluate is None else self.evaluate.to_json(),
                    "compare": {"enabled": False}
                    if self.compare is None
                    else {
                        "prompts": self.compare.prompts,
                        **asdict(self.compare.render),
                        "held_out": {k: list(v) for k, v in self.compare.held_out.items()},
                    },
                },
                default=str,
            )
        )


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A config file's contents: `.toml` read with tomllib, anything else as JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist; see examples/selma_run.toml for one") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        kind = "TOML" if path.suffix == ".toml" else "JSON (name it .toml for TOML)"
        raise ValueError(f"config file {path} is not valid {kind}: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a table/object of sections ({', '.join(SECTIONS)})")
    return data


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a run config file; relative paths in it are relative to its folder."""
    path = Path(path)
    return parse_run_config(read_config_file(path), base_dir=path.parent)


def _check_keys(where: str, data: Any, allowed: list[str]) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a table/object of settings, got {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")
    return dict(data)


def _build(where: str, cls, values: dict[str, Any]):
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None


def _path(base_dir: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}={value!r} must be a non-empty path string")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def _model(base_dir: Path, value: Any, where: str) -> str:
    if value in (TINY_MODEL, SHAPES_MODEL, RENDERER_MODEL):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"{where}={value!r} must be a diffusers folder, a checkpoint file, a hub id, 'shapes' or 'tiny'"
        )
    local = _path(base_dir, value, where)
    return str(local) if local.exists() or value.startswith((".", "/", "~")) else value  # else a hub id


def _skills(items: Any, base_dir: Path) -> tuple[Skill, ...]:
    if isinstance(items, str | dict):
        items = [items]
    if not isinstance(items, list):
        raise ValueError(f"skills={items!r} must be a list of built-in names, skill JSON files or inline skills")
    skills: list[Skill] = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            skills.append(Skill.from_dict(item, source=f"skills[{i}]"))
        elif isinstance(item, str) and item.endswith(".json"):
            skills += load_skills_file(_path(base_dir, item, f"skills[{i}]"))
        elif isinstance(item, str):
            skills.append(builtin_skill(item))
        else:
            raise ValueError(f"skills[{i}]={item!r} must be a built-in name, a .json skills file or an inline skill")
    return tuple(skills)


def parse_run_config(data: dict[str, Any], base_dir: str | Path = ".") -> RunConfig:
    """Validate a run config's sections (see the module docstring) into a RunConfig."""
    base_dir = Path(base_dir)
    data = _check_keys("the config", data, list(SECTIONS))
    if "run_dir" not in data:
        raise ValueError('the config has no run_dir; add e.g. run_dir = "runs/mine" (where every artifact goes)')
    if "skills" not in data:
        raise ValueError("the config has no skills; add e.g. skills = ['counting', 'spatial']")
    if isinstance(data.get("llm"), dict) and "api_key" in data["llm"]:
        # Don't echo it: config files get shared. The key lives in the environment only.
        raise ValueError(
            "[llm] api_key: never put an API key in a config file; set api_key_env to the NAME of the environment "
            "variable that holds it (default OPENAI_API_KEY)"
        )
    llm_data = _check_keys("[llm]", data.get("llm"), _names(LLMConfig))
    llm = _build("[llm]", LLMConfig, llm_data)
    prompts = _build(
        "[prompts]", PromptGenConfig, _check_keys("[prompts]", data.get("prompts"), _names(PromptGenConfig))
    )
    images = _check_keys("[images]", data.get("images"), ["model", *_names(DatasetConfig), "filter_threshold"])
    image_model = _model(base_dir, images.pop("model", TINY_MODEL), "[images] model")
    filter_threshold = images.pop("filter_threshold", 0.0)
    if filter_threshold:
        from ..evaluation.dataset_filter import check_threshold

        filter_threshold = _build("[images] filter_threshold", check_threshold, {"threshold": filter_threshold})
    train = _check_keys("[train]", data.get("train"), ["model", "device", *_names(TrainConfig)])
    train_model = _model(base_dir, train.pop("model"), "[train] model") if "model" in train else image_model
    if image_model == RENDERER_MODEL and "model" not in (data.get("train") or {}):
        train_model = SHAPES_MODEL
    if train_model == RENDERER_MODEL:
        raise ValueError("[train] model='renderer': the renderer only writes data; train on model = 'shapes'")
    train_device = train.pop("device", "auto")
    skills = _skills(data["skills"], base_dir)
    styleinject = parse_styleinject_section(
        _check_keys("[styleinject]", data.get("styleinject"), allowed_keys()), train, [s.name for s in skills]
    )
    joint = parse_joint_section(_check_keys("[joint]", data.get("joint"), joint_keys()), train)
    evaluate = parse_evaluate_section(
        _check_keys("[evaluate]", data.get("evaluate"), evaluate_keys()),
        tiny_model=image_model == TINY_MODEL,
        shapes_model=train_model == SHAPES_MODEL,
    )
    from ..models.pipelines import check_device_name

    _build("[train] device", check_device_name, {"device": train_device})
    merge = _check_keys("[merge]", data.get("merge"), ["enabled", *_names(MergeConfig)])
    merge_on = merge.pop("enabled", True)
    compare = _check_keys("[compare]", data.get("compare"), ["enabled", "prompts", "held_out", *_names(CompareConfig)])
    compare_on = compare.pop("enabled", True)
    stage = None
    if compare_on:
        held_out = compare.pop("held_out", {}) or {}
        if not isinstance(held_out, dict) or not all(
            isinstance(v, list) and v and all(isinstance(t, str) and t.strip() for t in v) for v in held_out.values()
        ):
            raise ValueError("[compare] held_out must map skill names to non-empty lists of prompts")
        count = compare.pop("prompts", 4)
        render = _build("[compare]", CompareConfig, compare)
        stage = _build(
            "[compare]",
            CompareStage,
            {"prompts": count, "render": render, "held_out": {k: tuple(v) for k, v in held_out.items()}},
        )
    return RunConfig(
        run_dir=_path(base_dir, data["run_dir"], "run_dir"),
        skills=skills,
        llm=llm,
        prompts=prompts,
        image_model=image_model,
        images=_build("[images]", DatasetConfig, images),
        train_model=train_model,
        train_device=train_device,
        filter_threshold=filter_threshold,
        train=_build("[train]", TrainConfig, train),
        merge=_build("[merge]", MergeConfig, merge) if merge_on else None,
        compare=stage,
        styleinject=styleinject,
        joint=joint,
        evaluate=evaluate,
    )
