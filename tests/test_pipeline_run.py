"""`selma run CONFIG` and `selma demo`: config validation up front, the whole pipeline end to end on the tiny model,
every artifact on disk, and a rerun that does no work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from selma.cli import main
from selma.pipeline.run_config import load_run_config, parse_run_config

TINY_RUN = """
run_dir = "run"
skills = ["counting", "spatial"]
[llm]
backend = "template"
[prompts]
count = 8
[images]
model = "tiny"
batch_size = 8
steps = 2
width = 32
height = 32
device = "cpu"
[train]
device = "cpu"
rank = 4
alpha = 4
resolution = 32
batch_size = 4
grad_accum = 1
steps = 4
save_every = 4
[merge]
method = "linear"
[compare]
prompts = 1
steps = 2
resolution = 32
"""


def config(**sections) -> dict:
    return {"run_dir": "run", "skills": ["counting", "spatial"], **sections}


# --- validation: one rule per case, all before any work ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (
            {"run_dir": "r", "skills": ["counting"], "trian": {}},
            r"the config: unknown key\(s\) 'trian'; allowed: run_dir,",
        ),
        (config(images={"stepz": 2}), r"\[images\]: unknown key\(s\) 'stepz'; allowed: model, batch_size, steps"),
        (config(train={"rank": 0}), r"\[train\]: TrainConfig.rank=0 must be an integer >= 1"),
        (config(images={"width": 30}), r"\[images\]: DatasetConfig.width=30 must be a positive multiple of 8"),
        (config(prompts={"threshold": 2.0}), r"\[prompts\]: PromptGenConfig.threshold=2.0 is outside \(0, 1\]"),
        (config(merge={"method": "avg"}), r"\[merge\]: MergeConfig.method='avg' is unknown"),
        (config(compare={"prompts": 0}), r"\[compare\] prompts=0 must be an integer in 1..64"),
        (config(compare={"steps": 0}), r"\[compare\]: CompareConfig.steps=0"),
        (config(compare={"held_out": {"art": ["a"]}}), r"held_out names skill\(s\) \['art'\] that are not in skills"),
        (config(styleinject={"enabled": True, "skill": "art"}), r"\[styleinject\] skill='art' is not one of"),
        (config(styleinject={"enabled": True, "num_styles": 0}), r"\[styleinject\]: TrainConfig.num_styles=0"),
        (config(styleinject={"method": "lora"}), r"\[styleinject\]: unknown key\(s\) 'method'; allowed: enabled,"),
        (config(styleinject={"enabled": True, "inspect_steps": 0}), r"\[styleinject\] inspect_steps=0 must be"),
        (config(llm={"backend": "gpt"}), r"\[llm\]: LLMConfig.backend='gpt' is not known"),
        (config(llm={"api_key": "sk-123"}), r"never put an API key in a config file; set api_key_env"),
        (config(train={"device": "gpu"}), r"\[train\] device"),
        ({"skills": ["counting"]}, r"the config has no run_dir"),
        ({"run_dir": "r"}, r"the config has no skills"),
        ({"run_dir": "r", "skills": []}, r"skills is empty"),
        ({"run_dir": "r", "skills": ["counting", "counting"]}, r"\['counting'\] appear more than once"),
        ({"run_dir": "r", "skills": ["countin"]}, r"no built-in skill named 'countin'"),
        ({"run_dir": "r", "skills": [3]}, r"skills\[0\]=3 must be a built-in name"),
        (
            {"run_dir": "r", "skills": [{"name": "merged", "description": "d", "examples": ["a b", "c d", "e f"]}]},
            r"may not be named 'merged'",
        ),
        (
            {"run_dir": "r", "skills": [{"name": "joint", "description": "d", "examples": ["a b", "c d", "e f"]}]},
            r"may not be named 'joint'",
        ),
        (config(joint={"enabled": True, "rank": 0}), r"\[joint\]: TrainConfig.rank=0"),
        (config(evaluate={"metrics": ["fid"]}), r"\[evaluate\]: evaluation metrics \['fid'\] must be"),
        (config(evaluate={"answerer": {"backend": "gpt4"}}), r"\[evaluate\] answerer: answerer backend='gpt4'"),
        (config(evaluate={"answerer": {"backend": "openai", "model": "m", "api_key": "sk-1"}}), r"never put an API"),
        (config(images={"model": "some/model"}, evaluate={"metrics": ["clipscore"]}), r"CLIPScore needs a CLIP"),
        (config(evaluate={"prompts": 0}), r"\[evaluate\] prompts=0 must be an integer"),
        (config(evaluate={"stepz": 2}), r"\[evaluate\]: unknown key\(s\) 'stepz'; allowed: enabled, prompts"),
    ],
)
def test_config_errors_name_the_problem(data, match):
    with pytest.raises(ValueError, match=match):
        parse_run_config(data)


def test_config_file_errors(tmp_path):
    with pytest.raises(ValueError, match=r"does not exist; see examples/selma_run.toml"):
        load_run_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("run_dir = \n")
    with pytest.raises(ValueError, match=r"bad.toml is not valid TOML"):
        load_run_config(bad)


def test_api_key_in_config_is_not_echoed(capsys, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config(llm={"api_key": "sk-secret-123"})))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "api_key_env" in err and "sk-secret-123" not in err


def test_paths_are_relative_to_the_config_file_and_inline_skills_and_files_load(tmp_path):
    skill = {"name": "clocks", "description": "Clocks.", "examples": ["a red clock", "two clocks", "a clock tower"]}
    (tmp_path / "more.json").write_text(json.dumps([{**skill, "name": "bells"}]))
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"run_dir": "out", "skills": ["counting", skill, "more.json"]}))
    loaded = load_run_config(path)
    assert loaded.run_dir == tmp_path / "out"
    assert [s.name for s in loaded.skills] == ["counting", "clocks", "bells"]
    assert loaded.train_model == loaded.image_model == "tiny"


def test_the_shipped_example_config_is_valid():
    example = load_run_config(Path(__file__).parent.parent / "examples" / "selma_run.toml")
    assert [s.name for s in example.skills] == ["counting", "spatial"] and example.merge.method == "svd"


# --- end to end ----------------------------------------------------------------------------------------------------


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_selma_run_makes_every_artifact_and_a_rerun_does_no_work(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text(TINY_RUN)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "run"
    for skill in ("counting", "spatial"):
        assert len((run / "prompts" / f"{skill}.jsonl").read_text().splitlines()) == 8
        assert len((run / "datasets" / skill / "metadata.jsonl").read_text().splitlines()) == 8
        assert (run / "datasets" / f"{skill}_contact_sheet.png").is_file()
        assert (run / "experts" / f"{skill}.safetensors").is_file()
        assert (run / "experts" / skill / "loss_curve.png").is_file()
        held_out = json.loads((run / "comparison" / f"{skill}.prompts.json").read_text())
        training = {json.loads(line)["text"] for line in (run / "prompts" / f"{skill}.jsonl").read_text().splitlines()}
        assert len(held_out) == 1 and not set(held_out) & training, "grid rows are prompts not used in training"
        with Image.open(run / "comparison" / f"{skill}.png") as grid:
            assert grid.width == 6 + 4 * 166, "columns: base, counting, spatial, merged"
        assert f"grid      {run / 'comparison' / f'{skill}.png'}" in out
    assert (run / "experts" / "merged.safetensors").is_file() and (run / "experts" / "merged.report.json").is_file()
    assert json.loads((run / "run_config.json").read_text())["train"]["steps"] == 4
    before = mtimes(run)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "nothing to do: every stage was already complete" in out
    after = mtimes(run)
    # Rewritten on every run, same contents: the resolved config, and each skill file (generate_prompts saves it).
    for name in ("run_config.json", "skills/counting.json", "skills/spatial.json"):
        del before[name], after[name]
    assert after == before, "a rerun of a finished run writes nothing"
    assert main(["compare", "--run-dir", str(run)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_evaluation_and_joint_stages_score_every_variant_and_a_rerun_asks_nothing(tmp_path, capsys):
    path = tmp_path / "run.toml"
    stages = (
        "[joint]\nenabled = true\nsteps = 2\n[evaluate]\nprompts = 2\nsteps = 2\nresolution = 32\n"
        'metrics = ["dsg", "vqascore"]\nanswerer = {backend = "transformers", model = "tiny", device = "cpu"}\n'
    )
    one_skill = TINY_RUN.replace('skills = ["counting", "spatial"]', 'skills = ["counting"]')
    path.write_text(one_skill.replace("[compare]", stages + "[compare]"))
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "run"
    board = json.loads((run / "evaluation" / "scoreboard.json").read_text())
    rows = {(r["variant"], r["metric"]): r for r in board["rows"]}
    assert set(rows) == {(v, m) for v in ("base", "counting", "merged", "joint") for m in ("dsg", "vqascore")}
    assert all(r["n"] == 2 and r["ci_low"] <= r["mean"] <= r["ci_high"] for r in rows.values())
    assert "vs_base" in rows["joint", "dsg"] and "vs_base" not in rows["base", "dsg"]
    assert len(list((run / "evaluation" / "images" / "counting").rglob("*.png"))) == 4 * 2
    questions = [json.loads(line) for line in (run / "evaluation" / "questions" / "counting.jsonl").open()]
    assert len(questions) == 2 and {q["source"] for q in questions} == {"scene"}, "template prompts: exact questions"
    held_out = json.loads((run / "comparison" / "counting.prompts.json").read_text())
    assert [q["prompt"] for q in questions] == held_out[:2]
    assert (run / "experts" / "joint.safetensors").is_file()
    assert "| counting | joint | DSG | 2 |" in out and (run / "evaluation" / "scoreboard.png").is_file()
    answers = (run / "evaluation" / "answers.jsonl").read_text()
    before = mtimes(run)
    assert main(["run", str(path)]) == 0
    assert "0 answerer call(s)" in capsys.readouterr().out
    after = mtimes(run)
    for name in ("run_config.json", "skills/counting.json"):
        del before[name], after[name]
    assert after == before and (run / "evaluation" / "answers.jsonl").read_text() == answers
    assert main(["eval", "--run-dir", str(run)]) == 0
    assert "0 answerer call(s)" in capsys.readouterr().out
    assert main(["compare", "--run-dir", str(run)]) == 0, "the saved config (with [evaluate], [joint]) reads back"


@pytest.mark.slow
def test_selma_demo_runs_the_whole_pipeline_and_prints_every_artifact(tmp_path, capsys):
    run = tmp_path / "demo"
    assert main(["demo", "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    listed = [line.split(maxsplit=1) for line in out.split("artifacts (run dir")[1].splitlines()[1:] if line.strip()]
    kinds = {kind for kind, _ in listed}
    assert {"skill", "prompts", "model", "dataset", "preview", "expert", "curve", "merged", "report", "grid"} <= kinds
    assert {"styleinject", "router", "heatmap", "embedding", "held-out"} <= kinds
    for kind, where in listed:
        assert Path(where.strip()).exists(), f"{kind} artifact {where} is printed but missing"
    report = json.loads((run / "experts" / "merged.report.json").read_text())
    assert report["method"] == "svd" and report["rank"] == 8 and len(report["inputs"]) == 3
    skills = ("shapes_counting", "shapes_spatial", "shapes_colour_binding")
    for skill in skills:
        with Image.open(run / "comparison" / f"{skill}.png") as grid:
            assert grid.width == 6 + 5 * 166, "columns: base, the three experts, merged"
        assert 1 <= len(json.loads((run / "comparison" / f"{skill}.prompts.json").read_text())) <= 8  # held-out
    board = json.loads((run / "evaluation" / "scoreboard.json").read_text())
    text = json.dumps(board)
    assert all(s in text for s in skills) and "joint" in text and "merged" in text
    answers = (run / "evaluation" / "answers.jsonl").read_text()
    assert "seen:" in answers, "the shapes checker answered (it says what it saw)"
    router = json.loads((run / "router" / "shapes_counting" / "router.json").read_text())
    assert len(router["prompts"]) == 2, "the StyleInject expert's routers were recorded on two held-out prompts"
    assert not [str(p) for p in run.rglob("*.lock")], "a finished run leaves no lock file"
    assert main(["demo", "--run-dir", str(run)]) == 0
    assert "nothing to do" in capsys.readouterr().out
