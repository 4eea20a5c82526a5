"""`selma images`: every skill of a run, resume, errors, and two processes under `accelerate launch` on CPU."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from selma.atomic_files import append_jsonl, read_jsonl
from selma.cli import main
from selma.datasets.files import read_dataset
from selma.testing.tiny_models import build_tiny_sd

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPTS = {
    "counting": ["one red apple", "two dogs", "three cups", "four birds", "five kites"],
    "spatial": ["a cat above a box", "a car left of a house", "a cup on a table"],
}
TINY_ARGS = ["--steps", "2", "--width", "32", "--height", "32", "--batch-size", "2", "--device", "cpu"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared CPU OpenMP's spinning threads are 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny SD diffusers folder."""
    folder = tmp_path_factory.mktemp("models") / "tiny-sd"
    build_tiny_sd(folder, sample_size=32)
    return folder


@pytest.fixture
def run_dir(tmp_path) -> Path:
    for skill, texts in PROMPTS.items():
        append_jsonl(tmp_path / "prompts" / f"{skill}.jsonl", [{"text": t, "skill": skill} for t in texts])
    return tmp_path


def test_renders_every_skill_of_the_run_and_resumes(model, run_dir, capsys):
    assert main(["images", "--run-dir", str(run_dir), "--model", str(model), *TINY_ARGS]) == 0
    out = capsys.readouterr().out
    assert "5/5 images" in out and "3/3 images" in out
    for skill, texts in PROMPTS.items():
        records = read_dataset(run_dir / "datasets" / skill)
        assert [r.text for r in records] == texts and {r.extra["model"] for r in records} == {str(model)}
    assert main(["images", "--run-dir", str(run_dir), "--model", str(model), *TINY_ARGS]) == 0
    assert "(+0 rendered, 5 already there)" in capsys.readouterr().out
    # nothing left to render, but a model that does not exist is still an error
    assert main(["images", "--run-dir", str(run_dir), "--model", "/no/such/model", *TINY_ARGS]) == 2
    assert "model path '/no/such/model' does not exist" in capsys.readouterr().err
    # ... and so is a device this machine does not have (the probe found this one exiting 0)
    assert main(["images", "--run-dir", str(run_dir), "--model", str(model), *TINY_ARGS, "--device", "cuda:7"]) == 2
    assert "device='cuda:7' but this" in capsys.readouterr().err


def test_only_the_skills_asked_for(model, run_dir):
    assert main(["images", "--run-dir", str(run_dir), "--model", str(model), "--skill", "spatial", *TINY_ARGS]) == 0
    assert (run_dir / "datasets" / "spatial").is_dir() and not (run_dir / "datasets" / "counting").exists()


def test_a_run_without_prompts(tmp_path, capsys):
    assert main(["images", "--run-dir", str(tmp_path), "--model", "unused", *TINY_ARGS]) == 2
    assert "has no <skill>.jsonl files; run `selma prompts --run-dir" in capsys.readouterr().err


def test_a_model_path_that_does_not_exist(run_dir, capsys):
    assert main(["images", "--run-dir", str(run_dir), "--model", "./no/such/model", *TINY_ARGS]) == 2
    assert "model path './no/such/model' does not exist; pass a diffusers folder" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_under_accelerate_launch_share_the_prompts(model, run_dir):
    # accelerate 1.15 starts N CPU processes only through its torchrun launcher (--multi_gpu); with --cpu it
    # starts one process unless MPI is installed. `selma images` then joins them over gloo.
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    command += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    command += ["--main_process_port", str(free_port())]
    command += ["-m", "selma", "images", "--run-dir", str(run_dir), "--model", str(model), "--skill", "counting"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([*command, *TINY_ARGS], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "5/5 images" in out.stdout and "(this process's share of 2)" in out.stdout
    lines = read_jsonl(run_dir / "datasets" / "counting" / "metadata.jsonl")
    assert sorted(line["index"] for line in lines) == [0, 1, 2, 3, 4], "every prompt once, none twice"
    batches = {tuple(line["batch"]) for line in lines}
    assert batches == {(0, 2), (4,), (1, 3)}, "each process rendered its own share: i % 2 == process_index"


def test_demo_datasets_stage_renders_a_dataset_and_a_contact_sheet_per_skill(tmp_path, capsys):
    from selma.cli.demo import DEMO_SKILLS, render_datasets

    for skill in DEMO_SKILLS:  # the prompts stage's output (the whole demo also trains; that stage tests itself)
        append_jsonl(tmp_path / "prompts" / f"{skill}.jsonl", [{"text": f"{skill} prompt {i}"} for i in range(4)])
    artifacts = render_datasets(tmp_path)
    from selma.models.pipelines import NAMED_MODELS

    assert artifacts[0] == ("model", NAMED_MODELS["shapes"])  # the shipped shapes model's installed folder
    for skill in DEMO_SKILLS:
        folder = tmp_path / "datasets" / skill
        records = read_dataset(folder)
        assert len(records) == 4 and {(r.extra["width"], r.extra["steps"]) for r in records} == {(64, 20)}
        sheet = tmp_path / "datasets" / f"{skill}_contact_sheet.png"
        assert sheet.is_file() and ("dataset", folder) in artifacts and ("preview", sheet) in artifacts
    assert render_datasets(tmp_path) == artifacts  # resumes: the model is reused, nothing new is rendered
    assert capsys.readouterr().out.count("(+0 rendered, 4 already there)") == len(DEMO_SKILLS)
