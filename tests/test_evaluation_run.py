"""The evaluation end to end without big models: a programmatic checker as the answerer, a tiny random CLIP,
images on disk -> scores -> scoreboard; the cache proven (a second run makes no answerer call); `selma eval`
and the SELMA Evaluate node on the same data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from selma.cli import main
from selma.evaluation.answerer import Answer, AnswererConfig
from selma.evaluation.answerer_factory import register_checker
from selma.evaluation.scoring import EvalConfig, EvalImage, score_images
from selma.testing.tiny_vlms import build_tiny_clip

COLOURS = {"red": (220, 20, 20), "blue": (20, 20, 220), "green": (20, 200, 20)}
CALLS = {"pairs": 0}


def colour_checker(image: Image.Image, question) -> Answer:
    """Yes when every colour word of the question is the image's colour (the mean pixel's nearest)."""
    CALLS["pairs"] += 1
    mean = np.asarray(image.convert("RGB"), dtype=float).reshape(-1, 3).mean(0)
    nearest = min(COLOURS, key=lambda c: np.abs(mean - COLOURS[c]).sum())
    asked = [c for c in COLOURS if c in question.text.lower()]
    yes = all(c == nearest for c in asked)
    return Answer(0.9 if yes else 0.1, "yes" if yes else "no")


register_checker("colour-test", colour_checker)

SCENES = {
    "a red cube": {"entities": [{"noun": "cube", "attributes": ["red"]}]},
    "a blue ball": {"entities": [{"noun": "ball", "attributes": ["blue"]}]},
}


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "clip")


def write_variants(folder, wrong_for_base=True):
    """base draws every prompt green (wrong); 'expert' draws the colour the prompt asks for."""
    images = []
    for variant in ("base", "expert"):
        for r, prompt in enumerate(SCENES):
            colour = "green" if variant == "base" and wrong_for_base else prompt.split()[1]
            path = folder / variant / f"{r:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), COLOURS[colour]).save(path)
            images.append(EvalImage("colour", variant, prompt, r, path, {"scene": SCENES[prompt]}))
    return images


def test_scores_follow_the_answers_and_a_rerun_asks_nothing(tmp_path, clip_folder):
    images = write_variants(tmp_path / "images")
    config = EvalConfig(answerer=AnswererConfig("programmatic", "colour-test"), clip_model=str(clip_folder),
                        device="cpu")  # fmt: skip
    CALLS["pairs"] = 0
    scores, cache = score_images(images, config, tmp_path / "eval")
    by = {(s.variant, s.metric, s.item): s.score for s in scores}
    # DSG: "is there a cube?" yes, "is the cube red?" yes for the expert, no for green base -> 1.0 vs 0.5
    assert by["expert", "dsg", "0:a red cube"] == 1.0 and by["base", "dsg", "0:a red cube"] == 0.5
    assert by["expert", "vqascore", "1:a blue ball"] == pytest.approx(0.9)
    assert by["base", "vqascore", "1:a blue ball"] == pytest.approx(0.1)
    assert all(0.0 <= by[k] <= 2.5 for k in by if k[1] == "clipscore")
    assert CALLS["pairs"] == 4 * 2 + 4  # 2 DSG questions + 1 VQAScore question per image
    questions = (tmp_path / "eval" / "questions" / "colour.jsonl").read_text().splitlines()
    assert json.loads(questions[0])["source"] == "scene"
    answers = (tmp_path / "eval" / "answers.jsonl").read_text().splitlines()
    assert len(answers) == 4 * 3 + 4  # the CLIPScore "answers" too
    CALLS["pairs"] = 0
    again, cache = score_images(images, config, tmp_path / "eval")
    assert CALLS["pairs"] == 0 and cache.calls == 0, "the second run is answered from answers.jsonl"
    assert again == scores


def test_the_template_llm_cannot_write_questions_for_foreign_prompts(tmp_path):
    images = [
        EvalImage("colour", "base", p, 0, i.path) for p, i in zip(SCENES, write_variants(tmp_path), strict=False)
    ]
    config = EvalConfig(metrics=("dsg",), answerer=AnswererConfig("programmatic", "colour-test"))
    with pytest.raises(Exception, match="writes DSG questions only for prompts it generated itself"):
        score_images(images, config, tmp_path / "eval")
    assert not (tmp_path / "eval" / "answers.jsonl").exists(), "nothing half-written"


def test_bad_evaluation_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="DSG and VQAScore need an answerer"):
        EvalConfig(metrics=("dsg",))
    with pytest.raises(ValueError, match="CLIPScore needs a CLIP model"):
        EvalConfig(metrics=("clipscore",))
    with pytest.raises(ValueError, match="no programmatic checker 'nope'"):
        score_images(write_variants(tmp_path)[:1], EvalConfig(metrics=("vqascore",),
                     answerer=AnswererConfig("programmatic", "nope")), tmp_path / "e")  # fmt: skip
    with pytest.raises(ValueError, match="no images to evaluate"):
        score_images([], EvalConfig(metrics=("vqascore",), answerer=AnswererConfig("programmatic", "x")), tmp_path)
    with pytest.raises(ValueError, match="never the key"):
        AnswererConfig("openai", "gpt-4o", api_key_env="sk-proj-123")


def test_selma_eval_explicit_mode_writes_the_scoreboard(tmp_path, clip_folder, capsys):
    write_variants(tmp_path / "images")
    (tmp_path / "prompts.txt").write_text("\n".join(SCENES) + "\n")
    args = ["eval", "--images", str(tmp_path / "images" / "base"), "--images", str(tmp_path / "images" / "expert"),
            "--prompts", str(tmp_path / "prompts.txt"), "--metrics", "vqascore,clipscore",
            "--answerer", "programmatic=colour-test", "--clip-model", str(clip_folder), "--device", "cpu",
            "-o", str(tmp_path / "out")]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| custom | expert | VQAScore | 2 | 0.900" in out and "-0.800" not in out
    board = json.loads((tmp_path / "out" / "scoreboard.json").read_text())
    vqa = next(r for r in board["rows"] if r["variant"] == "expert" and r["metric"] == "vqascore")
    assert vqa["vs_base"]["mean"] == pytest.approx(0.8)
    assert main(args) == 0 and "0 answerer call(s)" in capsys.readouterr().out
    (tmp_path / "images" / "base" / "001.png").unlink()
    assert main(args) == 2  # a usage error, named
    assert "holds 1 image(s) but" in capsys.readouterr().err


def test_the_evaluate_nodes_score_image_batches(node_package, tmp_path, monkeypatch, clip_folder):
    import importlib

    import torch

    # ComfyUI imports its own copy of the core (the package under the folder's name): register there too
    importlib.import_module(f"{node_package.__name__}.selma.evaluation.answerer_factory").register_checker(
        "colour-test", colour_checker
    )
    monkeypatch.setenv("SELMA_OUTPUT_DIR", str(tmp_path))
    nodes = node_package.nodes.evaluation
    (evaluator,) = nodes.SelmaEvaluator().make("programmatic", "colour-test", str(clip_folder), "dsg,vqascore", "",
                                               "OPENAI_API_KEY", 4)  # fmt: skip
    prompts_file = tmp_path / "selma" / "r1" / "prompts" / "colour.jsonl"
    prompts_file.parent.mkdir(parents=True)
    prompts_file.write_text("".join(json.dumps({"text": p, "scene": s}) + "\n" for p, s in SCENES.items()))

    def batch(colours):
        return [torch.tensor(COLOURS[c], dtype=torch.float32).div(255).expand(1, 16, 16, 3) for c in colours]

    out = nodes.SelmaEvaluate().evaluate(
        [evaluator],
        batch(["green", "green"]),
        ["\n".join(SCENES)],
        ["base,expert"],
        ["colour"],
        ["r1"],
        [0],
        images_2=batch(["red", "blue"]),
    )
    picture, board = out["result"]
    assert picture.shape[0] == 1 and picture.shape[-1] == 3
    rows = {(r["variant"], r["metric"]): r for r in json.loads(board)}
    assert rows["expert", "dsg"]["mean"] == 1.0 and rows["base", "dsg"]["mean"] == 0.5
    assert rows["expert", "dsg"]["vs_base"]["mean"] == 0.5
    assert (tmp_path / "selma" / "r1" / "evaluation" / "scoreboards" / "colour" / "scoreboard.png").is_file()


def _shard_process(index, images, config, out, barrier, results):
    scores, cache = score_images(images, config, out, shard=(index, 2), barrier=barrier.wait)
    results.put((index, scores, cache.calls))


def test_two_processes_share_the_answers_and_agree_with_one(tmp_path):
    import multiprocessing

    images = write_variants(tmp_path / "images")
    config = EvalConfig(metrics=("dsg", "vqascore"), answerer=AnswererConfig("programmatic", "colour-test"))
    alone, _ = score_images(images, config, tmp_path / "one")
    context = multiprocessing.get_context("fork")  # the children inherit the registered checker
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_shard_process, args=(i, images, config, tmp_path / "two", barrier, results))
               for i in (0, 1)]  # fmt: skip
    for w in workers:
        w.start()
    got = dict((index, (scores, calls)) for index, scores, calls in (results.get(timeout=120) for _ in workers))
    for w in workers:
        w.join(timeout=60)
    assert got[0][0] == got[1][0] == alone, "every process returns every image's scores"
    assert got[0][1] > 0 and got[1][1] > 0, "both processes answered part of the pairs"
    one = (tmp_path / "one" / "answers.jsonl").read_text().splitlines()
    two = (tmp_path / "two" / "answers.jsonl").read_text().splitlines()
    assert len(two) == len(one), "each pair was answered once, by one of the two processes"


def test_typed_shapes_prompts_get_their_dsg_questions_from_the_worlds_grammar(node_package, tmp_path, monkeypatch):
    """Held-out prompts typed into a workflow carry no record; the shapes grammar reads their scene back, so the
    checker scores DSG exactly: the renderer's picture of each prompt passes, a blank one fails."""
    import numpy as np
    import torch

    from selma.shapes.renderer_pipeline import RendererPipeline

    monkeypatch.setenv("SELMA_OUTPUT_DIR", str(tmp_path))
    nodes = node_package.nodes.evaluation
    (evaluator,) = nodes.SelmaEvaluator().make("programmatic", "shapes", "", "dsg,vqascore", "", "OPENAI_API_KEY", 4)
    prompts = ["two red circles", "a blue square to the left of a green triangle"]
    drawn = RendererPipeline()(prompts, generator=torch.Generator().manual_seed(0)).images
    exact = [torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)[None] for image in drawn]
    blank = [torch.ones(1, 64, 64, 3) for _ in prompts]
    out = nodes.SelmaEvaluate().evaluate(
        [evaluator], blank, ["\n".join(prompts)], ["base,renderer"], ["typed"], ["r2"], [0], images_2=exact
    )
    rows = {(r["variant"], r["metric"]): r["mean"] for r in json.loads(out["result"][1])}
    assert rows["renderer", "dsg"] == 1.0 and rows["renderer", "vqascore"] == 1.0
    assert rows["base", "dsg"] == 0.0
