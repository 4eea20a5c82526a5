"""`selma train`: in-process, and data parallel with two CPU processes under `accelerate launch`."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from selma.cli import main
from selma.datasets.files import DatasetWriter, dataset_dir
from selma.experts.lora_files import load_lora_expert
from selma.testing.tiny_models import build_tiny_sd

REPO_ROOT = Path(__file__).resolve().parents[1]
COLOURS = {"red": (230, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 220), "yellow": (240, 230, 30)}
# batch 2 on one process = batch 1 on each of two processes (see test_two_processes_...)
TRAIN_ARGS = ["--rank", "4", "--alpha", "4", "--steps", "2", "--grad-accum", "2", "--save-every", "0"]
TRAIN_ARGS += ["--resolution", "32", "--lr", "1e-3"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: two threads oversubscribe it
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A saved tiny SD pipeline (`model/`) and a run dir with two skills' datasets (`run/`)."""
    root = tmp_path_factory.mktemp("cli")
    build_tiny_sd(root / "model")
    for skill, template in (("colours", "a {} image"), ("swatches", "a swatch of {}")):
        writer = DatasetWriter(dataset_dir(root / "run", skill))
        for index, (name, rgb) in enumerate(COLOURS.items()):
            writer.add(Image.new("RGB", (32, 32), rgb), template.format(name), index)
    return root


def fresh_run(workspace: Path, name: str) -> Path:
    run = workspace / name
    shutil.copytree(workspace / "run" / "datasets", run / "datasets")
    return run


def test_train_two_skills_in_one_call(workspace, capsys):
    run = fresh_run(workspace, "one_call")
    code = main(
        ["train", "--run-dir", str(run), "--model", str(workspace / "model"), "--skill", "colours"]
        + ["--skill", "swatches", "--batch-size", "2", *TRAIN_ARGS]
    )
    assert code == 0
    out = capsys.readouterr().out
    for skill in ("colours", "swatches"):
        expert = load_lora_expert(run / "experts" / f"{skill}.safetensors")
        assert expert.metadata["skill"] == skill and expert.metadata["steps"] == 2
        assert (run / "experts" / skill / "train_log.jsonl").is_file()
        assert (run / "experts" / skill / "loss_curve.png").is_file()
        assert f"{skill}: 2/2 steps" in out


def test_a_missing_dataset_fails_before_the_model_loads(workspace, tmp_path, capsys):
    code = main(["train", "--run-dir", str(tmp_path), "--model", str(tmp_path / "no-model"), "--skill", "colours"])
    assert code == 2
    assert "datasets/colours does not exist; render one" in capsys.readouterr().err


def test_an_impossible_setting_fails_with_the_field_named(workspace, capsys):
    code = main(["train", "--run-dir", str(workspace / "run"), "--model", "x", "--skill", "colours", "--rank", "0"])
    assert code == 2
    assert "TrainConfig.rank=0 must be an integer >= 1" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_under_accelerate_launch_match_one_process_with_twice_the_batch(workspace):
    single = fresh_run(workspace, "single")
    model = str(workspace / "model")
    args = ["train", "--model", model, "--skill", "colours", *TRAIN_ARGS]
    assert main([*args, "--run-dir", str(single), "--batch-size", "2"]) == 0

    parallel = fresh_run(workspace, "parallel")
    # On a machine without GPUs `--cpu` gives one process unless MPI is set up; `--multi_gpu` starts the
    # processes with torchrun, and `selma train` asks accelerate for the CPU (gloo) when it sees no GPU.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(free_port()), "--num_cpu_threads_per_process", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [*launch, "-m", "selma", *args, "--run-dir", str(parallel), "--batch-size", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shares = [tuple(map(int, m)) for m in re.findall(r"this process encoded (\d+) of (\d+) chunks", done.stderr)]
    assert len(shares) == 2 and sum(mine for mine, _ in shares) == shares[0][1] > 1, "the caches are built once"

    work = parallel / "experts" / "colours"
    state = json.loads((work / "checkpoint" / "state.json").read_text())
    assert state["world_size"] == 2
    assert {p.name for p in (work / "checkpoint").glob("random_states_*.pkl")} == {
        "random_states_0.pkl",
        "random_states_1.pkl",
    }
    losses = [json.loads(line)["loss"] for line in (work / "train_log.jsonl").read_text().splitlines()]
    reference = [
        json.loads(line)["loss"] for line in (single / "experts/colours/train_log.jsonl").read_text().splitlines()
    ]
    assert losses == pytest.approx(reference, rel=1e-5)
    a = load_lora_expert(parallel / "experts" / "colours.safetensors")
    b = load_lora_expert(single / "experts" / "colours.safetensors")
    for name, module in a.modules.items():
        # gradients are averaged in another order; AdamW's normalised first steps magnify float noise a little
        torch.testing.assert_close(module.down, b.modules[name].down, atol=1e-4, rtol=0)
        torch.testing.assert_close(module.up, b.modules[name].up, atol=1e-4, rtol=0)
