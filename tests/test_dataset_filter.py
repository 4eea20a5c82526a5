"""The DSG dataset filter keeps exactly the images the answerer scores at or above the threshold."""

from __future__ import annotations

import json
import random

import pytest

import selma.shapes.checker  # noqa: F401  registers the "shapes" checker
from selma.datasets.files import DatasetWriter, read_dataset
from selma.evaluation.answerer import AnswererConfig
from selma.evaluation.dataset_filter import SCORES, filter_dataset
from selma.evaluation.questions import QuestionWriter
from selma.llm import LLMConfig
from selma.llm.grammars.shapes import shapes_counting
from selma.prompts.skills import builtin_skill as load_skill
from selma.shapes.parse import parse_prompt
from selma.shapes.world import Scene, layout, render

CHECKER = AnswererConfig(backend="programmatic", model="shapes")


def _dataset(tmp_path):
    """Six prompts of the world: the even ones drawn right, the odd ones drawn as an empty frame."""
    writer = DatasetWriter(tmp_path / "datasets" / "shapes_counting")
    scenes, right = {}, set()
    for i in range(6):
        text, scene = shapes_counting(random.Random(i), 40)
        scene_drawn = layout(parse_prompt(text), random.Random(i)) if i % 2 == 0 else Scene(())
        picture = render(scene_drawn)
        record = writer.add(picture, text, i, seed=i)
        scenes[text] = scene
        if i % 2 == 0:
            right.add(record.file_name)
    return writer.folder, scenes, right


def test_keeps_only_the_images_that_pass(tmp_path):
    source, scenes, right = _dataset(tmp_path)
    questions = QuestionWriter(LLMConfig(backend="template"), tmp_path / "questions.jsonl")
    dest = tmp_path / "filtered" / "shapes_counting"
    result = filter_dataset(source, dest, CHECKER, 1.0, questions=questions, skill=load_skill("shapes_counting"),
                            scenes=scenes)  # fmt: skip
    kept = read_dataset(dest)
    assert {r.file_name for r in kept} == right
    assert (result.kept, result.total) == (3, 6)
    assert sorted(p.name for p in dest.iterdir()) == sorted([*right, "metadata.jsonl", SCORES])
    rows = [json.loads(line) for line in (dest / SCORES).read_text().splitlines()]
    assert len(rows) == 6 and all((r["dsg"] == 1.0) == (r["file_name"] in right) for r in rows)
    # a rerun asks nothing new and keeps the same
    again = filter_dataset(source, dest, CHECKER, 1.0, questions=questions, skill=load_skill("shapes_counting"),
                           scenes=scenes)  # fmt: skip
    assert again.kept == 3 and len((dest / SCORES).read_text().splitlines()) == 6


def test_refuses_a_bad_threshold_and_its_own_folder(tmp_path):
    source, scenes, _ = _dataset(tmp_path)
    questions = QuestionWriter(LLMConfig(backend="template"), tmp_path / "q.jsonl")
    skill = load_skill("shapes_counting")
    with pytest.raises(ValueError, match="in \\(0, 1\\]"):
        filter_dataset(source, tmp_path / "f", CHECKER, 1.5, questions=questions, skill=skill, scenes=scenes)
    with pytest.raises(ValueError, match="another folder"):
        filter_dataset(source, source, CHECKER, 1.0, questions=questions, skill=skill, scenes=scenes)


def test_the_renderer_writes_a_dataset_the_checker_passes_and_a_config_names_it(tmp_path):
    from selma.atomic_files import append_jsonl
    from selma.datasets.rendering import DatasetConfig, build_dataset
    from selma.pipeline.run_config import parse_run_config
    from selma.shapes.renderer_pipeline import RendererPipeline

    prompts = [shapes_counting(random.Random(i), 40) for i in range(5)]
    append_jsonl(tmp_path / "prompts" / "shapes_counting.jsonl", [{"text": t, "scene": s} for t, s in prompts])
    result = build_dataset("shapes_counting", RendererPipeline(), tmp_path, config=DatasetConfig(width=64, height=64),
                           model_name="renderer")  # fmt: skip
    assert result.rendered == 5
    questions = QuestionWriter(LLMConfig(backend="template"), tmp_path / "q.jsonl")
    kept = filter_dataset(result.folder, tmp_path / "kept", CHECKER, 1.0, questions=questions,
                          skill=load_skill("shapes_counting"), scenes=dict(prompts))  # fmt: skip
    assert kept.kept == 5, "the renderer draws what each prompt says"
    config = parse_run_config({"run_dir": "r", "skills": ["shapes_counting"], "images": {"model": "renderer"}},
                              base_dir=tmp_path)  # fmt: skip
    assert (config.image_model, config.train_model) == ("renderer", "shapes")
    with pytest.raises(ValueError, match="only writes data"):
        parse_run_config({"run_dir": "r", "skills": ["shapes_counting"], "train": {"model": "renderer"}},
                         base_dir=tmp_path)  # fmt: skip


def test_a_run_with_filter_threshold_trains_on_the_kept_images(tmp_path):
    from selma.pipeline.run_config import parse_run_config
    from selma.pipeline.runner import run_pipeline
    from selma.pipeline.stage_state import training_dataset

    config = parse_run_config(
        {"run_dir": "r", "skills": ["shapes_counting"], "prompts": {"count": 4},
         "images": {"model": "renderer", "filter_threshold": 1.0, "width": 64, "height": 64}},
        base_dir=tmp_path,
    )  # fmt: skip
    result = run_pipeline(config, stages=("prompts", "images"))
    images = result.stages[1]
    assert ("filtered", tmp_path / "r" / "filtered" / "shapes_counting") in images.artifacts
    assert training_dataset(config, "shapes_counting") == tmp_path / "r" / "filtered" / "shapes_counting"
    assert len(read_dataset(training_dataset(config, "shapes_counting"))) == 4  # the renderer draws them right
    assert any("kept 4/4" in line for line in images.lines)
    with pytest.raises(ValueError, match="filter_threshold"):
        bad = {"run_dir": "r", "skills": ["counting"], "images": {"filter_threshold": 2}}
        parse_run_config(bad, base_dir=tmp_path)


def _prompts(run_dir, count: int = 5) -> None:
    from selma.atomic_files import append_jsonl

    prompts = [shapes_counting(random.Random(i), 40) for i in range(count)]
    append_jsonl(run_dir / "prompts" / "shapes_counting.jsonl", [{"text": t, "scene": s} for t, s in prompts])


def test_selma_images_filters_with_the_checker_on_the_shapes_model(tmp_path, capsys):
    from selma.cli import main

    _prompts(tmp_path)
    args = ["images", "--run-dir", str(tmp_path), "--model", "shapes", "--steps", "4", "--width", "64", "--height",
            "64", "--filter-threshold", "0.75"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    kept_dir = tmp_path / "filtered" / "shapes_counting"
    rows = [json.loads(line) for line in (kept_dir / SCORES).read_text().splitlines()]
    assert len(rows) == 5  # every image scored
    passed = {r["file_name"] for r in rows if r["dsg"] >= 0.75}
    kept = {r.file_name for r in read_dataset(kept_dir)} if (kept_dir / "metadata.jsonl").exists() else set()
    assert kept == passed and f"kept {len(passed)}/5 images" in out


def test_selma_images_filter_flags_are_checked_before_any_model_loads(tmp_path, capsys):
    from selma.cli import main

    _prompts(tmp_path)
    base = ["images", "--run-dir", str(tmp_path)]
    assert main([*base, "--model", "some-org/some-model", "--filter-threshold", "0.5"]) == 2  # a hub id: not loaded
    assert "needs --answerer BACKEND=MODEL" in capsys.readouterr().err
    assert main([*base, "--model", "shapes", "--filter-threshold", "2"]) == 2
    assert "in (0, 1]" in capsys.readouterr().err
    assert main([*base, "--model", "shapes", "--answerer", "programmatic=shapes"]) == 2
    assert "add --filter-threshold" in capsys.readouterr().err
    assert not (tmp_path / "datasets").exists()


def test_selma_train_trains_on_the_filtered_folder(tmp_path, capsys):
    from selma.cli import main

    _prompts(tmp_path, count=3)
    train = ["train", "--run-dir", str(tmp_path), "--model", "shapes", "--skill", "shapes_counting", "--data",
             "filtered", "--steps", "1", "--batch-size", "2", "--resolution", "64", "--rank", "2"]  # fmt: skip
    assert main(train) == 2  # nothing filtered yet: a clear error, no model loaded
    assert "--filter-threshold" in capsys.readouterr().err
    args = ["images", "--run-dir", str(tmp_path), "--model", "renderer", "--width", "64", "--height", "64",
            "--filter-threshold", "1.0", "--answerer", "programmatic=shapes"]  # fmt: skip
    assert main(args) == 0 and "kept 3/3 images" in capsys.readouterr().out  # the renderer draws them right
    assert main(train) == 0
    assert (tmp_path / "experts" / "shapes_counting.safetensors").is_file()


def test_the_filter_node_keeps_what_the_evaluators_answerer_passes(node_package, tmp_path, monkeypatch):
    """SELMA Dataset Writer (typed shapes prompts, no prompt records) -> SELMA Filter Dataset with the checker:
    the renderer's pictures are kept, the blank ones not; the kept dataset is one SELMA Train Expert reads."""
    import numpy as np
    import torch

    from selma.shapes.renderer_pipeline import RendererPipeline

    monkeypatch.setenv("SELMA_OUTPUT_DIR", str(tmp_path))
    nodes = node_package.nodes
    prompts = ["two red circles", "a blue square to the left of a green triangle", "three yellow triangles"]
    drawn = RendererPipeline()(prompts, generator=torch.Generator().manual_seed(0)).images
    images = [torch.from_numpy(np.asarray(drawn[0], dtype=np.float32) / 255)[None], torch.ones(1, 64, 64, 3)]
    images.append(torch.from_numpy(np.asarray(drawn[2], dtype=np.float32) / 255)[None])
    (dataset,) = nodes.datasets.SelmaDatasetWriter().write(images, prompts, ["shapes_counting"], ["f1"])
    (evaluator,) = nodes.evaluation.SelmaEvaluator().make("programmatic", "shapes", "", "dsg", "", "OPENAI_API_KEY", 4)
    out = nodes.datasets.SelmaFilterDataset().filter(dataset, evaluator, 1.0)
    kept, sheet = out["result"]
    assert kept.folder == tmp_path / "selma" / "f1" / "filtered" / "shapes_counting" and kept.count == 2
    assert [r.text for r in read_dataset(kept.folder)] == [prompts[0], prompts[2]]
    assert sheet.ndim == 4 and "kept 2/3 images" in out["ui"]["text"][0]
    with pytest.raises(ValueError, match="no answerer"):
        (clip_only,) = nodes.evaluation.SelmaEvaluator().make("programmatic", "", "some/clip", "clipscore", "", "K", 4)
        nodes.datasets.SelmaFilterDataset().filter(dataset, clip_only, 1.0)
