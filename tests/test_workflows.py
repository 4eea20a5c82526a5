"""Every shipped workflow (UI files in example_workflows/, API twins in api_workflows/) is checked as ComfyUI would
see it, from the files themselves.

Schemas: ComfyUI's own nodes from a real ComfyUI's /object_info dump (shared/comfyui/object_info.json) and ours
from our node classes (the repo imported as ComfyUI imports it). The helpers live in this file because
--import-mode=importlib keeps tests from importing sibling modules.

Model-file combos (checkpoint, UNet, CLIP, VAE, LoRA names) list the files of whoever dumped the schema, so a
combo counts as a file list when it has no options or any option ends in a model-file extension; its value must
then be a string naming such a file, not one of the listed names.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "example_workflows"  # what ComfyUI's template browser lists and serves
API_WORKFLOWS = REPO / "api_workflows"  # for comfy run; outside every folder the template browser scans
SHARED = Path(os.environ.get("SELMA_SHARED") or REPO.parent / "shared")  # CI names it where ../shared is not
OBJECT_INFO = SHARED / "comfyui" / "object_info.json"
UI_ONLY_TYPES = {"Note", "MarkdownNote"}  # front-end nodes: in saved workflows, never in object_info or API prompts
MODEL_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft", ".gguf")
ACCEPTED_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt")
VIRTUAL_FILE_CHOICES = {"pixel_space"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
EXPECTED = {
    "selma_full_pipeline",
    "selma_train_expert",
    "selma_merge_compare",
    "selma_evaluate",
    "selma_flux_train_merge",
}
# Workflows for models the user brings (their files are not here): checked against the schema, not run on the
# shipped shapes model.
REAL_WEIGHTS = {"selma_flux_train_merge"}


# ----------------------------------------------------------------------------------------------- schemas
@dataclass
class Input:
    name: str
    type: str
    options: dict
    required: bool
    choices: list | None = None

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES and not self.options.get("forceInput")

    @property
    def has_control(self) -> bool:
        """The front end appends a control_after_generate widget after INT inputs flagged so in the schema
        (`"control_after_generate": true`, as object_info marks KSampler's seed) and, unflagged, after INT
        inputs named seed / noise_seed (how it treats the classic node API)."""
        flag = self.options.get("control_after_generate")
        return self.type == "INT" and bool(flag if flag is not None else self.name in ("seed", "noise_seed"))

    @property
    def is_file_list(self) -> bool:
        # a folder's files; on a server with none, only the virtual entries ComfyUI adds (VAELoader: pixel_space)
        return self.type == "COMBO" and (
            set(self.choices or ()) <= VIRTUAL_FILE_CHOICES
            or any(str(c).endswith(MODEL_FILE_SUFFIXES) for c in self.choices)
        )


@dataclass
class Schema:
    inputs: list[Input]
    outputs: list[tuple[str, bool]]  # (type, is_list)
    output_node: bool

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    @property
    def widgets(self) -> list[Input]:
        return [i for i in self.inputs if i.is_widget]


def _input(name: str, raw, required: bool) -> Input:
    kind, options = raw[0], (raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {})
    if isinstance(kind, list):
        return Input(name, "COMBO", options, required, list(kind))
    if kind == "COMBO":  # the V3 schema's spelling
        return Input(name, "COMBO", options, required, list(options.get("options", [])))
    return Input(name, kind, options, required)


def schemas_from_object_info(object_info: dict) -> dict[str, Schema]:
    """Every node's schema from a ComfyUI's /object_info answer (a saved dump, or a live server's)."""
    found = {}
    for class_type, info in object_info.items():
        order = info.get("input_order", {})
        inputs = [
            _input(name, info["input"][section][name], section == "required")
            for section in ("required", "optional")
            for name in order.get(section, info["input"].get(section, {}))
        ]
        found[class_type] = Schema(
            inputs, list(zip(info["output"], info["output_is_list"], strict=True)), bool(info.get("output_node"))
        )
    return found


@pytest.fixture(scope="module")
def schemas(node_package) -> dict[str, Schema]:
    if not OBJECT_INFO.is_file():
        pytest.skip(f"{OBJECT_INFO} (a real ComfyUI's /object_info dump) is not here")
    found = schemas_from_object_info(json.loads(OBJECT_INFO.read_text()))
    for class_type, cls in node_package.nodes.NODE_CLASS_MAPPINGS.items():
        types = cls.INPUT_TYPES()
        inputs = [
            _input(name, raw, section == "required")
            for section in ("required", "optional")
            for name, raw in types.get(section, {}).items()
        ]
        lists = getattr(cls, "OUTPUT_IS_LIST", (False,) * len(cls.RETURN_TYPES))
        found[class_type] = Schema(
            inputs, list(zip(cls.RETURN_TYPES, lists, strict=True)), bool(getattr(cls, "OUTPUT_NODE", False))
        )
    return found


# ----------------------------------------------------------------------------------------------- checks
def types_match(output_type: str, input_type: str) -> bool:
    if "*" in (output_type, input_type):
        return True
    return bool(set(output_type.split(",")) & set(input_type.split(",")))  # ComfyUI's "IMAGE,MASK" unions


def node_type_problems(ui: dict, schemas: dict) -> list[str]:
    return [
        f"node {n['id']}: unknown type {n['type']!r}"
        for n in ui["nodes"]
        if n["type"] not in schemas and n["type"] not in UI_ONLY_TYPES
    ]


def link_problems(ui: dict, schemas: dict) -> list[str]:
    """Every link joins an existing output to an existing input of a matching type, and both ends record it."""
    nodes, problems = {n["id"]: n for n in ui["nodes"]}, []
    for link_id, source, slot, target, target_slot, kind in ui["links"]:
        if source not in nodes or target not in nodes:
            problems.append(f"link {link_id}: node {source if source not in nodes else target} does not exist")
            continue
        out_schema, in_node = schemas[nodes[source]["type"]], nodes[target]
        if slot >= len(out_schema.outputs) or target_slot >= len(in_node["inputs"]):
            problems.append(f"link {link_id}: slot out of range")
            continue
        out_type = out_schema.outputs[slot][0]
        entry = in_node["inputs"][target_slot]
        spec = schemas[in_node["type"]].input(entry["name"])
        if spec is None:
            problems.append(f"link {link_id}: {in_node['type']} has no input {entry['name']!r}")
            continue
        if not types_match(out_type, spec.type):
            problems.append(
                f"link {link_id}: {nodes[source]['type']} output {slot} ({out_type}) -> "
                f"{in_node['type']}.{entry['name']} ({spec.type})"
            )
        if kind != out_type or entry["link"] != link_id:
            problems.append(f"link {link_id}: type {kind!r} or the input's link id disagrees with the link")
        if link_id not in (nodes[source]["outputs"][slot].get("links") or []):
            problems.append(f"link {link_id}: missing from node {source}'s output {slot} links")
    return problems


def widget_value_problem(spec: Input, value) -> str | None:
    """Why `value` is not valid for the widget `spec`, or None."""
    opts = spec.options
    if spec.type == "COMBO":
        if spec.is_file_list:
            ok = isinstance(value, str) and value.endswith(ACCEPTED_FILE_SUFFIXES)
            return None if ok else f"{value!r} is not a model file name ({', '.join(ACCEPTED_FILE_SUFFIXES)})"
        return None if value in spec.choices else f"{value!r} not in {spec.choices}"
    if spec.type == "BOOLEAN":
        return None if isinstance(value, bool) else f"{value!r} is not a bool"
    if spec.type == "STRING":
        return None if isinstance(value, str) else f"{value!r} is not a str"
    if spec.type == "INT" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{value!r} is not an int"
    if spec.type == "FLOAT" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"{value!r} is not a number"
    if "min" in opts and value < opts["min"] or "max" in opts and value > opts["max"]:
        return f"{value!r} outside [{opts.get('min')}, {opts.get('max')}]"
    return None


def ui_widget_values(node: dict, schema: Schema) -> tuple[dict, list[str]]:
    """{widget name: value} read from widgets_values in the node's widget order, and the problems found."""
    values, problems, position = {}, [], 0
    expected = sum(1 + w.has_control for w in schema.widgets)
    if len(node["widgets_values"]) != expected:
        return {}, [f"{len(node['widgets_values'])} widget values, expected {expected}"]
    for widget in schema.widgets:
        values[widget.name] = node["widgets_values"][position]
        position += 1
        if widget.has_control:
            control = node["widgets_values"][position]
            position += 1
            if control not in CONTROL_VALUES:
                problems.append(f"{widget.name}: control_after_generate value {control!r} not in {CONTROL_VALUES}")
    return values, problems


def widget_problems(ui: dict, schemas: dict) -> list[str]:
    problems = []
    for node in ui["nodes"]:
        if node["type"] in UI_ONLY_TYPES:
            continue
        values, found = ui_widget_values(node, schemas[node["type"]])
        linked = {i["name"] for i in node["inputs"] if i.get("link") is not None}
        for name, value in values.items():
            problem = None if name in linked else widget_value_problem(schemas[node["type"]].input(name), value)
            found += [problem] if problem else []
        problems += [f"node {node['id']} {node['type']}: {p}" for p in found]
    return problems


def required_input_problems(ui: dict, schemas: dict) -> list[str]:
    """A required socket must be linked; a required widget must be linked or have a value."""
    problems = []
    for node in ui["nodes"]:
        if node["type"] in UI_ONLY_TYPES:
            continue
        schema = schemas[node["type"]]
        linked = {i["name"] for i in node["inputs"] if i.get("link") is not None}
        values, _ = ui_widget_values(node, schema)
        for spec in schema.inputs:
            if spec.required and spec.name not in linked and (not spec.is_widget or spec.name not in values):
                problems.append(f"node {node['id']} {node['type']}: required input {spec.name!r} is not set")
    return problems


def twin_problems(ui: dict, api: dict, schemas: dict) -> list[str]:
    """The API twin has the same nodes (id, class), the same links and the same widget values as the UI file."""
    problems = []
    graph_nodes = {str(n["id"]): n for n in ui["nodes"] if n["type"] not in UI_ONLY_TYPES}
    if set(graph_nodes) != set(api):
        problems.append(f"node ids differ: UI {sorted(graph_nodes)} vs API {sorted(api)}")
    if any(n["class_type"] in UI_ONLY_TYPES for n in api.values()):
        problems.append("a front-end-only node is in the API prompt")
    ui_links = {
        (str(src), slot, str(dst), next(n for n in ui["nodes"] if n["id"] == dst)["inputs"][dst_slot]["name"])
        for _, src, slot, dst, dst_slot, _ in ui["links"]
    }
    api_links = {
        (value[0], value[1], node_id, name)
        for node_id, node in api.items()
        for name, value in node["inputs"].items()
        if isinstance(value, list)
    }
    if ui_links != api_links:
        problems.append(
            f"links differ: only UI {sorted(ui_links - api_links)}, only API {sorted(api_links - ui_links)}"
        )
    for node_id, node in graph_nodes.items():
        twin = api.get(node_id)
        if twin is None:
            continue
        if twin["class_type"] != node["type"]:
            problems.append(f"node {node_id}: UI {node['type']} vs API {twin['class_type']}")
            continue
        values, _ = ui_widget_values(node, schemas[node["type"]])
        linked = {i["name"] for i in node["inputs"] if i.get("link") is not None}
        for name, value in values.items():
            if name not in linked and twin["inputs"].get(name) != value:
                problems.append(f"node {node_id} {name}: UI {value!r} vs API {twin['inputs'].get(name)!r}")
        extra = set(twin["inputs"]) - set(values) - linked
        if extra:
            problems.append(f"node {node_id}: API inputs {sorted(extra)} are neither widgets nor UI links")
    return problems


def all_problems(ui: dict, api: dict, schemas: dict) -> list[str]:
    problems = node_type_problems(ui, schemas)
    if problems:  # the other checks need every schema
        return problems
    return (
        link_problems(ui, schemas)
        + required_input_problems(ui, schemas)
        + widget_problems(ui, schemas)
        + twin_problems(ui, api, schemas)
    )


# ----------------------------------------------------------------------------------------------- tests
UI_FILES = sorted(p for p in WORKFLOWS.glob("*.json") if not p.stem.endswith("_api"))
SHAPES_FILES = [p for p in UI_FILES if p.stem not in REAL_WEIGHTS]


def load(name: str) -> tuple[dict, dict]:
    return (
        json.loads((WORKFLOWS / f"{name}.json").read_text()),
        json.loads((API_WORKFLOWS / f"{name}_api.json").read_text()),
    )


def test_the_shipped_set_is_complete(schemas):
    names = {p.stem for p in UI_FILES}
    expected = EXPECTED | ({"selma_styleinject_inspect"} if "SelmaRouterInspector" in schemas else set())
    assert expected <= names
    for name in names:
        assert (API_WORKFLOWS / f"{name}_api.json").is_file(), f"{name} has no API twin"
    kinds = {p.suffix for p in WORKFLOWS.iterdir()}
    assert kinds == {".jpg", ".json"}, "example_workflows/ holds only UI workflows and their thumbnails"
    scanned = ("example_workflows", "example", "examples", "workflow", "workflows")  # ComfyUI 0.3.64's list
    listed = {p.name for folder in scanned for p in (REPO / folder).glob("*.json")}
    assert listed == {p.name for p in UI_FILES}, "the template browser would list files it cannot open"


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_ui_file_is_a_frontend_workflow(path):
    ui = json.loads(path.read_text())
    assert ui["version"] == 0.4
    assert str(uuid.UUID(ui["id"])) == ui["id"]  # the front end's schema wants a UUID (else an alert on load)
    assert ui["last_node_id"] == max(n["id"] for n in ui["nodes"])
    assert ui["last_link_id"] == max((link[0] for link in ui["links"]), default=0)
    assert len({n["id"] for n in ui["nodes"]}) == len(ui["nodes"])
    for node in ui["nodes"]:
        assert {"id", "type", "pos", "size", "flags", "order", "mode", "inputs", "outputs", "properties"} <= set(node)
        assert "widgets_values" in node


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_workflow_is_valid_for_comfyui(path, schemas):
    ui, api = load(path.stem)
    assert all_problems(ui, api, schemas) == []


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_api_prompt_sets_every_required_input_and_has_an_output_node(path, schemas):
    """What ComfyUI's /prompt validation refuses first: a missing required input, or no output node at all."""
    _, api = load(path.stem)
    for node_id, node in api.items():
        missing = [i.name for i in schemas[node["class_type"]].inputs if i.required and i.name not in node["inputs"]]
        assert missing == [], f"node {node_id} {node['class_type']}"
        for value in node["inputs"].values():
            if isinstance(value, list):
                source = api[value[0]]
                assert value[1] < len(schemas[source["class_type"]].outputs)
    assert any(schemas[n["class_type"]].output_node for n in api.values())


@pytest.mark.parametrize("path", SHAPES_FILES, ids=lambda p: p.stem)
def test_note_explains_real_checkpoint_and_smoke_settings(path):
    ui, _ = load(path.stem)
    notes = [n["widgets_values"][0] for n in ui["nodes"] if n["type"] in UI_ONLY_TYPES]
    assert len(notes) == 1
    for needle in ("SELMA Load Shipped Model", "CheckpointLoaderSimple", "Empty Latent Image", "steps", "64x64"):
        assert needle in notes[0]


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: p.stem)
def test_thumbnail_is_a_small_valid_jpeg(path):
    thumb = path.with_suffix(".jpg")
    assert thumb.is_file() and thumb.stat().st_size < 60_000
    with Image.open(thumb) as image:
        image.verify()
    with Image.open(thumb) as image:
        assert image.format == "JPEG" and image.width >= 256 and image.height >= 128


@pytest.mark.parametrize("path", SHAPES_FILES, ids=lambda p: p.stem)
def test_every_workflow_runs_on_the_shipped_shapes_model(path):
    ui, api = load(path.stem)
    loaders = [n for n in ui["nodes"] if n["type"].endswith(("Loader", "LoadShippedModel"))]
    assert [(n["type"], n["widgets_values"][0]) for n in loaders] == [("SelmaLoadShippedModel", "shapes")]
    skills = [n["inputs"]["skill"] for n in api.values() if n["class_type"] == "SelmaSkill"]
    assert all(s.startswith("shapes_") for s in skills)  # the world's skills: prompts the model can draw
    evaluators = [n["inputs"] for n in api.values() if n["class_type"] == "SelmaEvaluator"]
    assert all((e["answerer"], e["answerer_model"]) == ("programmatic", "shapes") for e in evaluators)


def test_the_flux_workflow_loads_flux_renders_distilled_and_trains_at_24gb_settings():
    ui, api = load("selma_flux_train_merge")
    loaders = {n["class_type"]: n["inputs"] for n in api.values() if n["class_type"].endswith("Loader")}
    assert loaders["UNETLoader"] == {"unet_name": "flux1-dev.safetensors", "weight_dtype": "fp8_e4m3fn"}
    assert loaders["DualCLIPLoader"]["type"] == "flux" and loaders["VAELoader"]["vae_name"] == "ae.safetensors"
    samplers = [n["inputs"] for n in api.values() if n["class_type"] == "KSampler"]
    assert samplers and all(s["cfg"] == 1.0 for s in samplers)  # guidance-distilled: no negative pass
    assert all(api[s["positive"][0]]["class_type"] == "FluxGuidance" for s in samplers)
    trains = [n["inputs"] for n in api.values() if n["class_type"] == "SelmaTrainExpert"]
    assert len(trains) == 2 and all(t["gradient_checkpointing"] and t["resolution"] == 512 for t in trains)
    assert all(api[t["model"][0]]["class_type"] == "UNETLoader" for t in trains)
    merge = next(n["inputs"] for n in api.values() if n["class_type"] == "SelmaMergeExperts")
    assert api[merge["expert_1"][0]]["class_type"] == api[merge["expert_2"][0]]["class_type"] == "SelmaTrainExpert"
    (text,) = [n["widgets_values"][0] for n in ui["nodes"] if n["type"] in UI_ONLY_TYPES]
    for needle in ("flux1-dev.safetensors", "t5xxl_fp8_e4m3fn.safetensors", "ae.safetensors", "24 GB", "rank 16"):
        assert needle in text


def test_full_pipeline_trains_one_expert_per_skill_then_merges_and_compares():
    _, api = load("selma_full_pipeline")
    classes = [n["class_type"] for n in api.values()]
    assert classes.count("SelmaTrainExpert") == 2 and classes.count("SelmaDatasetWriter") == 2
    merge = next(n for n in api.values() if n["class_type"] == "SelmaMergeExperts")
    trained = {k for k, n in api.items() if n["class_type"] == "SelmaTrainExpert"}
    assert {merge["inputs"]["expert_1"][0], merge["inputs"]["expert_2"][0]} == trained
    assert "SelmaApplyExpert" in classes


# The checks must catch what they claim to: each corrupts one copy of a real workflow.
def _broken(mutate, schemas, name: str = "selma_train_expert") -> list[str]:
    ui, api = copy.deepcopy(load(name))
    mutate(ui, api)
    return all_problems(ui, api, schemas)


def _node(ui, kind):
    return next(n for n in ui["nodes"] if n["type"] == kind)


def test_checks_catch_an_unknown_node_type(schemas):
    assert _broken(lambda ui, api: _node(ui, "VAEDecode").update(type="VAEDecodeX"), schemas)


def test_checks_catch_a_link_between_mismatched_types(schemas):
    def mutate(ui, api):
        link = next(link for link in ui["links"] if link[5] == "VAE")
        link[1], link[2], link[5] = _node(ui, "SelmaLoadShippedModel")["id"], 1, "CLIP"

    assert any("(CLIP) ->" in p for p in _broken(mutate, schemas))


def _set_widget(kind: str, index: int, value):
    return lambda ui, api: _node(ui, kind)["widgets_values"].__setitem__(index, value)


def test_checks_catch_an_out_of_range_int(schemas):
    assert any("outside" in p for p in _broken(_set_widget("KSampler", 2, 0), schemas))  # steps min is 1


def test_checks_catch_a_combo_value_not_in_the_list(schemas):
    assert any("not in" in p for p in _broken(_set_widget("KSampler", 4, "nope"), schemas))  # sampler_name


def test_checks_catch_a_wrongly_typed_bool(schemas):
    ui, _ = load("selma_train_expert")
    values = _node(ui, "SelmaTrainExpert")["widgets_values"]
    index = next(k for k, v in enumerate(values) if v is False)  # gradient_checkpointing (0 == False, so no .index)
    assert any("not a bool" in p for p in _broken(_set_widget("SelmaTrainExpert", index, 0), schemas))


def test_checks_catch_a_missing_control_after_generate_value(schemas):
    mutate = lambda ui, api: _node(ui, "KSampler")["widgets_values"].pop(1)  # noqa: E731
    assert any("widget values" in p for p in _broken(mutate, schemas))


def test_checks_catch_a_file_combo_that_is_not_a_model_file(schemas):
    broken = _broken(_set_widget("SelmaLoadExpert", 0, "unet"), schemas, "selma_merge_compare")
    assert any("model file" in p for p in broken)


def test_checks_catch_a_shipped_model_that_does_not_exist(schemas):
    assert any("not in" in p for p in _broken(_set_widget("SelmaLoadShippedModel", 0, "sd15"), schemas))


def test_checks_catch_an_unconnected_required_socket(schemas):
    def mutate(ui, api):
        entry = next(i for i in _node(ui, "VAEDecode")["inputs"] if i["name"] == "vae")
        ui["links"] = [link for link in ui["links"] if link[0] != entry["link"]]
        entry["link"] = None

    assert any("required input 'vae'" in p for p in _broken(mutate, schemas))


def test_checks_catch_a_twin_that_differs(schemas):
    def mutate(ui, api):
        sampler = next(n for n in api.values() if n["class_type"] == "KSampler")
        sampler["inputs"]["steps"] = 3

    assert any("steps" in p for p in _broken(mutate, schemas))


# ------------------------------------------------------------------------------------ in a real ComfyUI
@pytest.mark.comfyui
def test_the_template_browser_lists_and_serves_every_ui_workflow(comfy_server):
    """What the front end's template browser does, over HTTP: list our templates, open each one and its thumbnail;
    every opened workflow then passes the same checks against the live server's /object_info."""
    listed = comfy_server.get_json("/api/workflow_templates")
    assert sorted(listed["comfyui-selma"]) == [p.stem for p in UI_FILES]  # no API twins, nothing missing
    live = schemas_from_object_info(comfy_server.get_json("/object_info"))
    for name in listed["comfyui-selma"]:
        status, body = comfy_server.get(f"/api/workflow_templates/comfyui-selma/{name}.json")
        assert status == 200, f"opening the template {name} gives {status}"
        ui = json.loads(body)
        assert ui == json.loads((WORKFLOWS / f"{name}.json").read_text())
        assert all_problems(ui, load(name)[1], live) == [], name
        status, thumb = comfy_server.get(f"/api/workflow_templates/comfyui-selma/{name}.jpg")
        assert status == 200 and thumb[:3] == b"\xff\xd8\xff", f"{name}'s thumbnail is not served as a JPEG"


@pytest.mark.comfyui
def test_the_live_checks_catch_a_node_type_the_server_does_not_have(comfy_server):
    live = schemas_from_object_info(comfy_server.get_json("/object_info"))
    ui, api = copy.deepcopy(load("selma_train_expert"))
    _node(ui, "SelmaTrainExpert")["type"] = "SelmaTrainExpertX"
    assert any("SelmaTrainExpertX" in problem for problem in all_problems(ui, api, live))
