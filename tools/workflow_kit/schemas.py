"""Node schemas by class type: ComfyUI's own nodes from an /object_info dump, ours from our node classes.

Widget order and socket types are then the ones ComfyUI will use.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OBJECT_INFO = REPO.parent / "shared" / "comfyui" / "object_info.json"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


@dataclass
class InputSpec:
    name: str
    type: str  # "COMBO" for lists of options
    options: dict
    required: bool
    choices: list | None = None

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES and not self.options.get("forceInput")

    @property
    def has_control(self) -> bool:
        """ComfyUI's front end adds a 'control_after_generate' widget after such INT inputs."""
        flag = self.options.get("control_after_generate")
        return self.type == "INT" and (flag if flag is not None else self.name in ("seed", "noise_seed"))


@dataclass
class NodeSpec:
    inputs: list[InputSpec]
    outputs: list[tuple[str, str, bool]]  # (type, name, is_list)
    output_node: bool = False


def _input_spec(name: str, raw, required: bool) -> InputSpec:
    kind, options = raw[0], (raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {})
    if isinstance(kind, list):
        return InputSpec(name, "COMBO", options, required, list(kind))
    if kind == "COMBO":
        return InputSpec(name, "COMBO", options, required, list(options.get("options", [])))
    return InputSpec(name, kind, options, required)


def load_schemas(object_info_path: Path) -> dict[str, NodeSpec]:
    """Every node ComfyUI knows (object_info) plus ours, by class type."""
    specs = {}
    for class_type, info in json.loads(object_info_path.read_text()).items():
        order = info.get("input_order", {})
        inputs = [
            _input_spec(name, info["input"][section][name], section == "required")
            for section in ("required", "optional")
            for name in order.get(section, info["input"].get(section, {}))
        ]
        outputs = list(zip(info["output"], info["output_name"], info["output_is_list"], strict=True))
        specs[class_type] = NodeSpec(inputs, outputs, bool(info.get("output_node")))
    package = _import_repo()
    for class_type, cls in package.nodes.NODE_CLASS_MAPPINGS.items():
        types = cls.INPUT_TYPES()
        inputs = [
            _input_spec(name, raw, section == "required")
            for section in ("required", "optional")
            for name, raw in types.get(section, {}).items()
        ]
        names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
        lists = getattr(cls, "OUTPUT_IS_LIST", (False,) * len(cls.RETURN_TYPES))
        outputs = list(zip(cls.RETURN_TYPES, names, lists, strict=True))
        specs[class_type] = NodeSpec(inputs, outputs, bool(getattr(cls, "OUTPUT_NODE", False)))
    return specs


def _import_repo():
    """This repo imported as ComfyUI imports it: a package named after the folder, loaded from __init__.py."""
    name = "comfyui_selma"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
