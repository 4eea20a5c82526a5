"""Held-out prompts: prompts of a skill that its expert was *not* trained on, for the comparison grid and the
evaluation stage.

Written by the same LLM (by default the offline template backend) from a different seed, and kept only if
their ROUGE-L F against every training prompt, every seed example and every held-out prompt kept before is at
most the threshold: SELMA's own diversity filter, so a held-out prompt is not a near-copy of a training one.
Saved as `comparison/<skill>.prompts.json` in the run directory (a JSON list of strings), so reruns and `selma
compare --run-dir` reuse the same prompts. The scenes the template backend built them from (for exact DSG
questions) are saved beside it in `comparison/<skill>.scenes.json` ({prompt: scene}); a prompts file without one
(written before scenes were kept, or edited by hand) still loads, its prompts then have no scene.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path

from ..atomic_files import write_text_atomic
from ..llm import LLMConfig, make_backend
from .diversity import DiversityFilter
from .generation import build_request, call_seed, parse_numbered_list
from .skills import Skill

log = logging.getLogger(__name__)

HELD_OUT_SEED_OFFSET = 1_000_003  # far from the training prompts' seed, so the LLM is asked other questions


def held_out_path(run_dir: str | Path, skill_name: str) -> Path:
    return Path(run_dir) / "comparison" / f"{skill_name}.prompts.json"


def held_out_scenes_path(run_dir: str | Path, skill_name: str) -> Path:
    return Path(run_dir) / "comparison" / f"{skill_name}.scenes.json"


def write_held_out_records(
    skill: Skill,
    training_prompts: Sequence[str],
    count: int,
    *,
    llm: LLMConfig | None = None,
    seed: int = 0,
    threshold: float = 0.8,
    max_calls: int = 8,
) -> list[dict]:
    """Up to `count` new prompts of `skill`, none of them in (or too close to) `training_prompts`, as records
    {"prompt": ..., "scene": ...} ("scene" only where the backend built the prompt from one)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count={count!r} must be an integer >= 1 (held-out prompts per skill)")
    llm = llm or LLMConfig()
    keep = DiversityFilter(threshold, pool=[*skill.examples, *training_prompts])
    rng = random.Random(seed + HELD_OUT_SEED_OFFSET)
    kept: list[dict] = []
    backend = make_backend(llm)
    scenes = getattr(backend, "scenes", {})
    try:
        for call_id in range(max_calls):
            examples = rng.sample(list(skill.examples), min(3, len(skill.examples)))
            request = build_request(
                skill, examples, 20, call_seed(seed + HELD_OUT_SEED_OFFSET, skill.name, call_id), call_id
            )
            for text in parse_numbered_list(backend.complete(request), skill.word_limit).prompts:
                if keep.offer(text)[0]:
                    kept.append({"prompt": text, **({"scene": scenes[text]} if text in scenes else {})})
                    if len(kept) == count:
                        return kept
    finally:
        backend.close()
    log.warning("only %d of %d held-out prompts for %r after %d calls", len(kept), count, skill.name, max_calls)
    if not kept:
        raise ValueError(
            f"no held-out prompt for skill {skill.name!r} passed the ROUGE-L filter (threshold {threshold}) against "
            "its training prompts; raise the threshold or give the comparison prompts yourself"
        )
    return kept


def write_held_out_prompts(skill: Skill, training_prompts: Sequence[str], count: int, **kwargs) -> list[str]:
    """`write_held_out_records` without the scenes."""
    return [r["prompt"] for r in write_held_out_records(skill, training_prompts, count, **kwargs)]


def held_out_records(
    run_dir: str | Path, skill: Skill, training_prompts: Sequence[str], count: int, **kwargs
) -> list[dict]:
    """The skill's held-out prompts saved in the run directory as records {"prompt": ..., "scene": ...} ("scene"
    where one was saved), written (and saved, scenes beside them) the first time."""
    path = held_out_path(run_dir, skill.name)
    if path.is_file():
        # Reused as saved (even if fewer than `count` passed the filter), so a rerun compares the same rows.
        return load_held_out_records(run_dir, skill.name)[:count]
    records = write_held_out_records(skill, training_prompts, count, **kwargs)
    # The scenes first: the prompts file is what marks the held-out set as written.
    scenes = {r["prompt"]: r["scene"] for r in records if "scene" in r}
    for where, data in ((held_out_scenes_path(run_dir, skill.name), scenes), (path, [r["prompt"] for r in records])):
        write_text_atomic(where, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return records


def held_out_prompts(
    run_dir: str | Path, skill: Skill, training_prompts: Sequence[str], count: int, **kwargs
) -> list[str]:
    """The skill's held-out prompts saved in the run directory, written (and saved) the first time."""
    return [r["prompt"] for r in held_out_records(run_dir, skill, training_prompts, count, **kwargs)]


def load_held_out_records(run_dir: str | Path, skill_name: str) -> list[dict]:
    """The saved held-out prompts of a skill as records, each with its saved scene if it has one."""
    prompts = load_held_out_prompts(run_dir, skill_name)
    scenes_file = held_out_scenes_path(run_dir, skill_name)
    scenes = json.loads(scenes_file.read_text(encoding="utf-8")) if scenes_file.is_file() else {}
    return [{"prompt": p, **({"scene": scenes[p]} if p in scenes else {})} for p in prompts]


def load_held_out_prompts(run_dir: str | Path, skill_name: str) -> list[str]:
    """The saved held-out prompts of a skill; raises with the fix when there are none."""
    path = held_out_path(run_dir, skill_name)
    if not path.is_file():
        raise ValueError(f"{path} does not exist; run `selma run` (its compare stage) first, or pass --prompt")
    return json.loads(path.read_text(encoding="utf-8"))
