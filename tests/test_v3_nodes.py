"""Our nodes as ComfyUI V3 nodes (nodes/glue/v3_nodes.py): what ComfyUI registers, what it runs, what it checks.

In-process tests import ComfyUI's comfy_api (marker `comfyui`, COMFYUI_PATH); the server tests run a real ComfyUI
(`comfy_server`). The declarations themselves (IS_CHANGED, VALIDATE_INPUTS) are tested without ComfyUI here too.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time

import pytest
from PIL import Image

from selma.datasets.files import DatasetWriter, dataset_dir


@pytest.fixture(scope="module")
def v3(comfy, node_package):
    """(the V3 classes comfy_entrypoint gives ComfyUI by node id, comfy_api.latest.io)."""
    from comfy_api.latest import ComfyExtension, io

    extension = asyncio.run(node_package.comfy_entrypoint())
    assert isinstance(extension, ComfyExtension)
    return {cls.GET_SCHEMA().node_id: cls for cls in asyncio.run(extension.get_node_list())}, io


def _declared_inputs(declaration) -> dict[str, dict[str, tuple]]:
    types = declaration.INPUT_TYPES()
    return {section: types.get(section, {}) for section in ("required", "optional")}


# ---- the declarations, without ComfyUI ----


def write_dataset(folder, count: int, start: int = 0) -> None:
    writer = DatasetWriter(folder, "png")
    for index in range(start, start + count):
        writer.add(Image.new("RGB", (8, 8), (index * 40 % 256, 0, 0)), f"a red cube {index}", index, seed=index)
    writer.remove_lock_file()


def test_load_dataset_says_it_changed_when_images_are_appended(node_package, tmp_path, monkeypatch):
    monkeypatch.setenv("SELMA_OUTPUT_DIR", str(tmp_path))
    loader = node_package.nodes.datasets.SelmaLoadDataset
    folder = dataset_dir(tmp_path / "selma" / "run", "cubes")
    write_dataset(folder, 2)
    before = loader.IS_CHANGED(dataset_path="", run_name="run", skill="cubes", max_images=4)
    assert before == loader.IS_CHANGED(dataset_path="", run_name="run", skill="cubes", max_images=4)
    time.sleep(0.01)
    write_dataset(folder, 1, start=2)
    assert loader.IS_CHANGED(dataset_path="", run_name="run", skill="cubes", max_images=4) != before
    assert loader.IS_CHANGED(dataset_path="", run_name="run", skill="", max_images=4) == "invalid"


def test_expert_loaders_say_they_changed_when_the_file_is_rewritten(node_package, tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    monkeypatch.setenv("SELMA_LORAS_DIR", str(tmp_path))
    loader = node_package.nodes.experts.SelmaLoadExpert
    assert loader.IS_CHANGED(expert_name="skill.safetensors") == "missing"
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 4)}, tmp_path / "skill.safetensors")
    first = loader.IS_CHANGED(expert_name="skill.safetensors", strength=1.0)
    assert first != "missing" and first == loader.IS_CHANGED(expert_name="skill.safetensors", strength=0.5)
    time.sleep(0.01)
    save_file({"lora_unet_x.lora_down.weight": torch.ones(3, 4)}, tmp_path / "skill.safetensors")  # retrained
    assert loader.IS_CHANGED(expert_name="skill.safetensors") != first


def test_run_name_is_checked_before_the_graph_runs(node_package):
    for node in (
        node_package.nodes.prompts.SelmaGeneratePrompts,
        node_package.nodes.datasets.SelmaLoadDataset,
        node_package.nodes.training.SelmaTrainExpert,
    ):
        assert node.VALIDATE_INPUTS(run_name="my-run") is True
        assert "is not a valid folder name" in node.VALIDATE_INPUTS(run_name="../elsewhere")
        assert node.VALIDATE_INPUTS() is True  # a linked run_name: the node checks it when it runs


# ---- in-process, with ComfyUI's comfy_api ----


@pytest.mark.comfyui
def test_the_package_registers_through_comfy_entrypoint_only(node_package, v3):
    classes, io = v3
    # ComfyUI 0.3.64 registers NODE_CLASS_MAPPINGS instead of comfy_entrypoint when a package has both
    assert not hasattr(node_package, "NODE_CLASS_MAPPINGS")
    assert set(classes) == set(node_package.nodes.NODE_CLASS_MAPPINGS)
    for node_id, cls in classes.items():
        assert issubclass(cls, io.ComfyNode), node_id
        assert cls.GET_SCHEMA().display_name == node_package.nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id]


@pytest.mark.comfyui
def test_every_v3_schema_keeps_the_declared_sockets_widgets_and_order(node_package, v3):
    """Saved workflows store widget values by position and links by input name: both must be the declaration's."""
    classes, io = v3
    for node_id, cls in classes.items():
        declaration = node_package.nodes.NODE_CLASS_MAPPINGS[node_id]
        info = cls.GET_NODE_INFO_V1()
        for section, declared in _declared_inputs(declaration).items():
            assert info["input_order"].get(section, []) == list(declared), (node_id, section)
            for name, spec in declared.items():
                kind, options = info["input"][section][name]
                declared_options = spec[1] if len(spec) > 1 else {}
                if isinstance(spec[0], list | tuple):
                    assert (kind, options["options"]) == ("COMBO", list(spec[0])), (node_id, name)
                else:
                    assert kind == spec[0], (node_id, name)
                assert {key: options[key] for key in declared_options} == declared_options, (node_id, name)
        assert info["output"] == list(declaration.RETURN_TYPES), node_id
        assert info["output_name"] == list(declaration.RETURN_NAMES), node_id
        assert info["output_tooltips"] == list(declaration.OUTPUT_TOOLTIPS), node_id
        assert info["output_is_list"] == list(getattr(declaration, "OUTPUT_IS_LIST", [False] * len(info["output"])))
        assert info["output_node"] == getattr(declaration, "OUTPUT_NODE", False), node_id
        assert info["description"] == declaration.DESCRIPTION and info["category"] == declaration.CATEGORY
        assert cls.INPUT_IS_LIST == getattr(declaration, "INPUT_IS_LIST", False), node_id


@pytest.mark.comfyui
def test_our_sockets_are_custom_types_and_comfyuis_are_its_own(v3):
    classes, io = v3
    schema = classes["SelmaTrainExpert"].GET_SCHEMA()
    by_id = {item.id: item for item in schema.inputs}
    assert isinstance(by_id["model"], io.Model.Input) and isinstance(by_id["vae"], io.Vae.Input)
    assert isinstance(by_id["rank"], io.Int.Input) and isinstance(by_id["method"], io.Combo.Input)
    assert by_id["dataset"].get_io_type() == "SELMA_DATASET"
    assert [output.io_type for output in schema.outputs] == ["SELMA_EXPERT", "MODEL", "IMAGE"]


@pytest.mark.comfyui
def test_execute_gets_hidden_inputs_as_the_declaration_expects(comfy, v3):
    """ComfyUI hands a V3 node its hidden inputs on `cls.hidden`, not as arguments; a list node (INPUT_IS_LIST)
    got them as one-item lists in the classic API, and its declared function still does."""
    from comfy_api.internal import make_locked_method_func
    from comfyui_selma.nodes.glue.v3_nodes import v3_node

    _, io = v3

    class Echo:
        DESCRIPTION, CATEGORY, FUNCTION = "echo", "test", "run"
        INPUT_IS_LIST, OUTPUT_NODE = True, True
        RETURN_TYPES, RETURN_NAMES, OUTPUT_TOOLTIPS, OUTPUT_IS_LIST = ("STRING",), ("text",), ("t",), (True,)

        @classmethod
        def INPUT_TYPES(cls):
            return {
                "required": {"text": ("STRING", {"default": "", "tooltip": "t"})},
                "hidden": {"unique_id": "UNIQUE_ID"},
            }

        def run(self, text, unique_id=None):
            return {"ui": {"text": [f"{unique_id}"]}, "result": (text + unique_id,)}

    node = v3_node("Echo", "Echo", Echo)
    clone = node.PREPARE_CLASS_CLONE({io.Hidden.unique_id: "7"})
    output = make_locked_method_func(node, node.FUNCTION, clone)(text=["a", "b"])
    assert output.args == (["a", "b", "7"],) and output.ui == {"text": ["['7']"]}


@pytest.mark.comfyui
def test_fingerprint_and_validation_reach_comfyui_where_declared(v3):
    from comfy_api.internal import first_real_override

    classes, _ = v3
    fingerprinted = {node_id for node_id, cls in classes.items() if first_real_override(cls, "fingerprint_inputs")}
    assert fingerprinted == {"SelmaLoadDataset", "SelmaLoadExpert", "SelmaLoadStyleInject"}
    validated = {node_id for node_id, cls in classes.items() if first_real_override(cls, "validate_inputs")}
    assert validated == {"SelmaGeneratePrompts", "SelmaLoadDataset", "SelmaTrainExpert"}
    # ComfyUI passes a validator only the inputs its signature names, and skips its own checks of those
    validator = first_real_override(classes["SelmaTrainExpert"], "validate_inputs")
    assert inspect.getfullargspec(validator).args == ["cls", "run_name"]


@pytest.mark.comfyui
def test_an_option_the_v3_schema_cannot_carry_is_an_error(v3):
    from comfyui_selma.nodes.glue.v3_nodes import NodeDeclarationError, v3_node

    class Odd:
        DESCRIPTION, CATEGORY, FUNCTION, RETURN_TYPES = "odd", "test", "run", ()

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"size": ("INT", {"default": 1, "slider": True})}}

    with pytest.raises(NodeDeclarationError, match=r"Odd\.size: option\(s\) \['slider'\] of a INT input"):
        v3_node("Odd", "Odd", Odd).GET_SCHEMA()


# ---- a real ComfyUI ----


def _load_dataset_prompt(run_name: str, skill: str) -> dict:
    return {
        "1": {
            "class_type": "SelmaLoadDataset",
            "inputs": {"dataset_path": "", "run_name": run_name, "skill": skill, "max_images": 4},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 1]}},
    }


def _cached_nodes(entry: dict) -> set[str]:
    return {node for kind, data in entry["status"]["messages"] if kind == "execution_cached" for node in data["nodes"]}


@pytest.mark.comfyui
def test_comfyui_serves_the_v3_schema(comfy_server):
    """Only a V3 output node gets ComfyUI's hidden prompt/extra_pnginfo without declaring them."""
    info = comfy_server.get_json("/object_info/SelmaMergeExperts")["SelmaMergeExperts"]
    assert info["input"]["hidden"] == {"prompt": ["PROMPT"], "extra_pnginfo": ["EXTRA_PNGINFO"]}
    assert info["output_tooltips"][0].startswith("the merged expert")


@pytest.mark.comfyui
def test_comfyui_refuses_a_bad_run_name_before_running_anything(comfy_server):
    status, answer = comfy_server.post_json("/prompt", {"prompt": _load_dataset_prompt("../elsewhere", "cubes")})
    assert status == 400
    details = [error["details"] for error in answer["node_errors"]["1"]["errors"]]
    assert any("is not a valid folder name" in text for text in details), answer


@pytest.mark.comfyui
def test_comfyui_loads_a_dataset_again_once_images_are_appended(comfy_server):
    folder = dataset_dir(comfy_server.output_dir / "selma" / "v3-fingerprint", "cubes")
    write_dataset(folder, 2)
    prompt = _load_dataset_prompt("v3-fingerprint", "cubes")
    first = comfy_server.run_prompt(prompt)
    assert first["status"]["status_str"] == "success", first["status"]
    assert "1" in _cached_nodes(comfy_server.run_prompt(prompt))  # reused: nothing changed on disk
    time.sleep(0.01)
    write_dataset(folder, 1, start=2)
    third = comfy_server.run_prompt(prompt)
    assert "1" not in _cached_nodes(third) and third["status"]["status_str"] == "success"
    assert os.path.exists(folder / "metadata.jsonl")
