"""Score images of prompts with DSG, VQAScore and CLIPScore, every model answer going through the answer cache.

    scores = score_images(images, EvalConfig(answerer=AnswererConfig("openai", "gpt-4o-mini")), "run/evaluation",
                          skills={"counting": skill})

Each `EvalImage` is one picture of one prompt (a skill, a variant such as 'base' or 'merged', the seed it was
rendered from). CLIPScore is kept in the same cache: its "answer" is max(cos, 0) under the answerer label
'clipscore:<model>', the score 2.5 times that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..llm import LLMConfig
from ..llm.base import SkillSpec
from .answer_cache import AnswerCache, image_hash
from .answerer import Answer, AnswererConfig
from .answerer_factory import make_answerer
from .questions import PromptSkill, QuestionWriter, questions_path
from .scoreboard import ItemScore
from .scores import CLIPSCORE_WEIGHT, Question, dsg_score, vqascore_question

METRICS = ("dsg", "vqascore", "clipscore")
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EvalConfig:
    metrics: tuple[str, ...] = field(default=METRICS, metadata={"help": f"any of {METRICS}"})
    answerer: AnswererConfig | None = field(default=None, metadata={"help": "answers DSG and VQAScore questions"})
    clip_model: str = field(default="", metadata={"help": "CLIP hub id or folder for CLIPScore"})
    llm: LLMConfig | None = field(default=None, metadata={"help": "writes DSG questions (None = template backend)"})
    threshold: float = field(default=0.5, metadata={"help": "P(yes) above this counts as yes for DSG"})
    device: str = "auto"

    def __post_init__(self) -> None:
        metrics = tuple(self.metrics)
        object.__setattr__(self, "metrics", metrics)
        unknown = [m for m in metrics if m not in METRICS]
        if unknown or not metrics:
            raise ValueError(f"evaluation metrics {list(metrics)} must be a non-empty subset of {list(METRICS)}")
        if {"dsg", "vqascore"} & set(metrics) and self.answerer is None:
            raise ValueError(
                "DSG and VQAScore need an answerer: set [evaluate] answerer = {backend = ..., model = ...}"
            )
        if "clipscore" in metrics and not self.clip_model.strip():
            raise ValueError("CLIPScore needs a CLIP model: set [evaluate] clip_model (a hub id or folder)")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"evaluation threshold={self.threshold!r} must be in (0, 1)")


@dataclass(frozen=True)
class EvalImage:
    skill: str
    variant: str
    prompt: str
    seed: int
    path: Path
    record: Mapping = field(default_factory=dict, compare=False)  # the prompt's record (a template scene, ...)

    @property
    def item(self) -> str:
        return f"{self.seed}:{self.prompt}"


class LazyAnswerer:
    """Builds the configured answerer on the first cache miss, so a fully cached rerun loads no model."""

    def __init__(self, config: AnswererConfig):
        self.label = config.label
        self._config = config
        self._answerer = None

    def answer(self, images, questions) -> list[Answer]:
        if self._answerer is None:
            self._answerer = make_answerer(self._config)
        return self._answerer.answer(images, questions)

    def close(self) -> None:
        if self._answerer is not None:
            self._answerer.close()


class ClipAnswerer:
    """CLIPScore through the Answerer interface: the question's text is the prompt; P = max(cos, 0). CLIP loads
    on the first cache miss, so a rerun of a scored run loads no model."""

    def __init__(self, model: str, device: str, batch_size: int = 16):
        self.label = f"clipscore:{model}"
        self._args = (model, device, batch_size)
        self._scorer = None

    def answer(self, images, questions) -> list[Answer]:
        if self._scorer is None:
            from .clip_scorer import ClipScorer

            model, device, batch_size = self._args
            self._scorer = ClipScorer(model, device=device, batch_size=batch_size)
        scores = self._scorer.score(list(images), [q.text for q in questions])
        return [Answer(min(1.0, s / CLIPSCORE_WEIGHT), f"{s:.4f}") for s in scores]

    def close(self) -> None:
        self._scorer = None


def _load(images: Sequence[EvalImage]):
    from PIL import Image

    loaded = []
    for image in images:
        if not image.path.is_file():
            raise FileNotFoundError(
                f"{image.path} (skill {image.skill!r}, {image.variant}) is missing; render it first"
            )
        with Image.open(image.path) as picture:
            picture = picture.convert("RGB")
        loaded.append((picture, image_hash(picture)))
    return loaded


def score_images(
    images: Sequence[EvalImage],
    config: EvalConfig,
    out_dir: str | Path,
    skills: Mapping[str, SkillSpec] | None = None,
    *,
    on_progress: ProgressFn | None = None,
    shard: tuple[int, int] = (0, 1),
    barrier: Callable[[], None] | None = None,
) -> tuple[list[ItemScore], AnswerCache]:
    """Per image and metric, one ItemScore; answers are read from (and added to) OUT_DIR/answers.jsonl.

    Under `accelerate launch`, pass `shard=(process_index, num_processes)` and `barrier=wait_for_everyone`: the
    main process writes the DSG questions, each process answers its share, and every process returns the
    scores of all images."""
    if not images:
        raise ValueError("no images to evaluate: every skill is empty (render held-out prompts first)")
    out_dir = Path(out_dir)
    cache = AnswerCache(out_dir / "answers.jsonl")
    loaded = _load(images)
    extras = [{"image": str(i.path), "prompt": i.prompt, "skill": i.skill, "variant": i.variant} for i in images]
    progress = on_progress or (lambda what, done, total: None)
    scores: list[ItemScore] = []

    wait = barrier or (lambda: None)

    def run(answerer, metric: str, items, batch: int) -> list[Answer]:
        cache.fill(answerer, items, batch_size=batch, shard=shard, on_progress=lambda d, t: progress(metric, d, t))
        if shard[1] > 1:
            wait()
            cache.reload()
        return cache.lookup(answerer.label, items)

    if "dsg" in config.metrics or "vqascore" in config.metrics:
        answerer = LazyAnswerer(config.answerer)
        try:
            if "dsg" in config.metrics:
                scores += _dsg(images, loaded, extras, config, out_dir, skills, answerer, run, shard, wait)
            if "vqascore" in config.metrics:
                items = [
                    (p, h, vqascore_question(i.prompt), e) for i, (p, h), e in zip(images, loaded, extras, strict=True)
                ]
                answers = run(answerer, "vqascore", items, config.answerer.batch_size)
                scores += [
                    ItemScore(i.skill, i.variant, "vqascore", i.item, a.p_yes)
                    for i, a in zip(images, answers, strict=True)
                ]
        finally:
            answerer.close()
    if "clipscore" in config.metrics:
        clip = ClipAnswerer(config.clip_model, config.device)
        items = [
            (p, h, Question(0, "global", i.prompt), e) for i, (p, h), e in zip(images, loaded, extras, strict=True)
        ]
        answers = run(clip, "clipscore", items, 16)
        scores += [
            ItemScore(i.skill, i.variant, "clipscore", i.item, CLIPSCORE_WEIGHT * a.p_yes)
            for i, a in zip(images, answers, strict=True)
        ]
    if shard[1] > 1:
        wait()  # every process has appended its last answers
    if shard[0] == 0:
        cache.remove_lock_file()
    return scores, cache


def _dsg(images, loaded, extras, config, out_dir, skills, answerer, run, shard, wait) -> list[ItemScore]:
    by_skill: dict[str, dict[str, list[Question]]] = {}
    if shard[0] != 0:
        wait()  # the main process writes the questions; the others read them from its cache
    for name in dict.fromkeys(i.skill for i in images):
        records = list({i.prompt: {"prompt": i.prompt, **i.record} for i in images if i.skill == name}.values())
        writer = QuestionWriter(config.llm, questions_path(out_dir, name))
        try:
            by_skill[name] = writer.questions((skills or {}).get(name) or PromptSkill(name), records)
        finally:
            writer.close()
    if shard[0] == 0 and shard[1] > 1:
        wait()
    items, owners = [], []
    for index, (image, (picture, digest), extra) in enumerate(zip(images, loaded, extras, strict=True)):
        for question in by_skill[image.skill][image.prompt]:
            items.append((picture, digest, question, extra))
            owners.append(index)
    answers = run(answerer, "dsg", items, config.answerer.batch_size)
    p_yes: list[dict[int, float]] = [{} for _ in images]
    for owner, (_, _, question, _), answer in zip(owners, items, answers, strict=True):
        p_yes[owner][question.id] = answer.p_yes
    return [
        ItemScore(
            i.skill, i.variant, "dsg", i.item, dsg_score(by_skill[i.skill][i.prompt], p_yes[n], config.threshold)
        )
        for n, i in enumerate(images)
    ]
