"""The shipped API workflows run headless the way the README tells users to: `comfy --skip-prompt run --workflow
FILE --wait` (comfy-cli, the `[cli]` extra) against a real ComfyUI with our package installed (marker `comfyui`).
Each run's outputs are checked in what ComfyUI kept (/history) and in the files the nodes wrote.

The workflows build on each other as a user would run them: the full pipeline trains and saves the two experts
that the merge-compare and evaluate workflows load, so they run in this order."""

from __future__ import annotations

import copy
import io
import json
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from PIL import Image
from safetensors import safe_open

pytestmark = pytest.mark.comfyui

API_WORKFLOWS = Path(__file__).resolve().parents[1] / "api_workflows"
ORDER = [
    "selma_full_pipeline", "selma_merge_compare", "selma_evaluate", "selma_train_expert", "selma_styleinject_inspect",
]  # fmt: skip


def comfy_cli() -> str:
    found = Path(sys.executable).with_name("comfy")
    if found.is_file():
        return str(found)
    found = shutil.which("comfy")
    if not found:
        pytest.skip('comfy-cli is not installed (pip install -e ".[cli]")')
    return found


def comfy_run(server, workflow: Path) -> tuple[int, list[dict], str]:
    """`comfy run --wait --json` on the workflow: (exit status, the NDJSON events, stderr)."""
    command = [
        comfy_cli(), "--skip-prompt", "--no-enable-telemetry", "run", "--workflow", str(workflow), "--wait",
        "--host", "127.0.0.1", "--port", str(server.port), "--json", "--no-notify", "--no-watch", "--timeout", "600",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, events, done.stderr


def run_ok(server, name: str) -> dict:
    """Runs a shipped workflow; returns ComfyUI's history entry for it after checking the run completed and
    every node of the workflow ran (or was reused from the previous run's cache)."""
    workflow = API_WORKFLOWS / f"{name}_api.json"
    code, events, stderr = comfy_run(server, workflow)
    envelope = events[-1] if events else {}
    failure = f"comfy run {name} failed ({code}): {envelope}\n{stderr}\nComfyUI's log:\n{server.log()[-4000:]}"
    assert code == 0 and envelope.get("ok"), failure
    data = envelope["data"]
    assert data["status"] == "completed"
    nodes = set(json.loads(workflow.read_text()))
    assert set(data["executed_node_ids"]) | set(data["cached_node_ids"]) == nodes
    return server.get_json(f"/history/{data['prompt_id']}")[data["prompt_id"]]


def outputs_of(entry: dict, class_type: str) -> list[dict]:
    prompt = entry["prompt"][2]
    return [out for node, out in entry["outputs"].items() if prompt[node]["class_type"] == class_type]


def fetched_images(server, entry: dict, class_type: str) -> list[Image.Image]:
    images = []
    for out in outputs_of(entry, class_type):
        for ref in out["images"]:
            query = urllib.parse.urlencode({key: ref[key] for key in ("filename", "subfolder", "type")})
            status, body = server.get(f"/view?{query}")
            assert status == 200
            images.append(Image.open(io.BytesIO(body)).convert("RGB"))
    assert images, f"no image from {class_type}"
    return images


def colours(image: Image.Image) -> int:
    return len(image.getcolors(maxcolors=image.width * image.height))


def assert_expert_file(path: Path) -> None:
    assert path.is_file(), f"{path} was not written"
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
        assert keys and any(f.get_tensor(k).abs().sum() > 0 for k in keys if "lora_up" in k or "lora_B" in k)


@pytest.mark.parametrize("name", ORDER)
def test_the_shipped_api_workflow_runs_headless_through_comfy_cli(comfy_server, name):
    entry = run_ok(comfy_server, name)
    loras = comfy_server.models_dir / "loras" / "selma"
    if name == "selma_full_pipeline":
        for expert in ("shapes_counting", "shapes_spatial", "merged"):
            assert_expert_file(loras / f"selma_shapes-{expert}.safetensors")
        texts = [t for out in outputs_of(entry, "SelmaTrainExpert") for t in out["text"]]
        assert len(texts) == 2 and all("steps in" in t and "loss" in t for t in texts)
    if name in ("selma_full_pipeline", "selma_merge_compare"):
        (grid,) = fetched_images(comfy_server, entry, "SelmaCompareGrid")
        assert grid.width > 64 and grid.height > 64 and colours(grid) > 16  # a picture, not a blank
    if name == "selma_evaluate":
        (out,) = outputs_of(entry, "SelmaEvaluate")
        assert "| skill |" in out["text"][0]  # the scoreboard table, with its numbers
        scoreboards = comfy_server.output_dir / "selma/selma_shapes/evaluation/scoreboards"
        assert json.loads((scoreboards / "held_out" / "scoreboard.json").read_text())
    if name == "selma_train_expert":
        (curve,) = fetched_images(comfy_server, entry, "PreviewImage")
        assert colours(curve) > 2
    if name == "selma_styleinject_inspect":
        (report,) = outputs_of(entry, "SelmaRouterInspector")
        payload = report["selma_router"][0]
        assert payload["layers"] and payload["steps"] > 0
        first = payload["probabilities"][0][0][0][0]
        assert len(first) == payload["num_styles"] * payload["num_experts"] and abs(sum(first) - 1) < 1e-4
        assert len(fetched_images(comfy_server, entry, "PreviewImage")) >= 3


def test_comfy_run_fails_on_a_workflow_with_a_node_type_comfyui_does_not_have(comfy_server, tmp_path):
    api = copy.deepcopy(json.loads((API_WORKFLOWS / "selma_train_expert_api.json").read_text()))
    trainer = next(node for node in api.values() if node["class_type"] == "SelmaTrainExpert")
    trainer["class_type"] = "SelmaTrainExpertX"
    broken = tmp_path / "broken_api.json"
    broken.write_text(json.dumps(api))
    code, events, _ = comfy_run(comfy_server, broken)
    assert code != 0 and events and not events[-1]["ok"]
    assert "SelmaTrainExpertX" in json.dumps(events[-1])
