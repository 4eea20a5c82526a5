"""What SELMA Evaluate does with ComfyUI's images: save them into the run folder, score them with the core, and
draw the scoreboard. Prompts that SELMA Generate Prompts wrote in the same run carry the scene they were built
from (prompts/<skill>.jsonl), so the offline template backend can ask their DSG questions exactly; shapes-world
prompts typed by hand are read back by the world's grammar (`selma.shapes.parse.prompt_scene`)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from ...selma.atomic_files import read_jsonl, write_bytes_atomic
from ...selma.evaluation.scoreboard import build_scoreboard, scoreboard_markdown, write_scoreboard
from ...selma.evaluation.scoring import EvalConfig, EvalImage, score_images
from ...selma.evaluation.variant_images import variant_image_path
from ...selma.shapes.parse import prompt_scene


def known_scenes(run_dir: Path) -> dict[str, dict]:
    """prompt -> the scene its template grammar recorded, for every prompt file of the run."""
    scenes: dict[str, dict] = {}
    for path in sorted((run_dir / "prompts").glob("*.jsonl")):
        for record in read_jsonl(path):
            if record.get("scene") and record.get("text", record.get("prompt")):
                scenes[record.get("text", record.get("prompt"))] = record["scene"]
    return scenes


def scenes_for(run_dir: Path, prompts) -> dict[str, dict]:
    """prompt -> its DSG scene for each of `prompts` that has one: recorded by the run's prompt files, or read back
    from a shapes-world prompt typed by hand (held-out lists carry no record)."""
    known = known_scenes(run_dir)
    scenes = {}
    for prompt in prompts:
        scene = known.get(prompt) or prompt_scene(prompt)
        if scene:
            scenes[prompt] = scene
    return scenes


def evaluate_columns(
    config: EvalConfig, columns: Mapping[str, Sequence], prompts: Sequence[str], skill: str, run_dir: Path, seed: int
):
    """(scoreboard picture, {"scoreboard": rows as JSON, "markdown": the table}); the first column is the base."""
    eval_dir = run_dir / "evaluation"
    scenes = scenes_for(run_dir, prompts)
    images = []
    for label, pictures in columns.items():
        for r, (prompt, picture) in enumerate(zip(prompts, pictures, strict=True)):
            path = variant_image_path(eval_dir, skill, label, r)
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            write_bytes_atomic(path, buffer.getvalue())
            record = {"scene": scenes[prompt]} if prompt in scenes else {}
            images.append(EvalImage(skill, label, prompt, seed + r, path, record))
    scores, _ = score_images(images, config, eval_dir)
    rows = build_scoreboard(scores, base=next(iter(columns)))
    title = f"{skill}: {len(prompts)} prompt(s) x {len(columns)} variant(s)"
    paths = write_scoreboard(rows, eval_dir / "scoreboards" / skill, title)
    from PIL import Image

    with Image.open(paths["png"]) as png:
        picture = png.convert("RGB")
    return picture, {"scoreboard": [r.to_json() for r in rows], "markdown": scoreboard_markdown(rows, title)}
