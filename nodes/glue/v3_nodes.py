"""Our nodes as ComfyUI V3 nodes (`comfy_api.latest`): one `io.ComfyNode` per node, built from its declaration.

Each node is declared once, in its stage file, in the classic form (INPUT_TYPES, RETURN_TYPES, OUTPUT_TOOLTIPS,
FUNCTION, IS_CHANGED, VALIDATE_INPUTS): that form imports and runs without ComfyUI, so the plain test suite calls
the nodes directly. Inside ComfyUI, `comfy_entrypoint` registers the V3 classes built here: an `io.Schema` with
typed inputs (`io.Int.Input`, `io.Model.Input`, `io.Custom("SELMA_EXPERT").Input`, ...), typed outputs with
their tooltips, hidden inputs from `cls.hidden`, `fingerprint_inputs` and `validate_inputs` where a node declares
them, results as `io.NodeOutput`. Node ids, input names and widget order are the declaration's, so saved workflows
load unchanged. An option this module does not know is an error, not dropped: the schema can never silently
differ from the declaration.
"""

from __future__ import annotations

import inspect
from typing import Any

from comfy_api.latest import ComfyExtension, io

_WIDGET_OPTIONS = {"tooltip", "default", "forceInput"}
_NUMBER_OPTIONS = {"min", "max", "step"}
_OPTIONS = {  # the declaration's option -> the V3 input's argument, per widget type
    "INT": {name: name for name in _WIDGET_OPTIONS | _NUMBER_OPTIONS},
    "FLOAT": {name: name for name in _WIDGET_OPTIONS | _NUMBER_OPTIONS | {"round"}},
    "STRING": {name: name for name in _WIDGET_OPTIONS | {"multiline", "placeholder"}}
    | {"dynamicPrompts": "dynamic_prompts"},
    "BOOLEAN": {name: name for name in _WIDGET_OPTIONS | {"label_on", "label_off"}},
    "COMBO": {"tooltip": "tooltip", "default": "default"},
}
_WIDGETS = {"INT": io.Int, "FLOAT": io.Float, "STRING": io.String, "BOOLEAN": io.Boolean}
_SOCKETS = {kind.io_type: kind for kind in (io.Model, io.Clip, io.Vae, io.Image, io.Mask, io.Latent, io.Conditioning)}


class NodeDeclarationError(TypeError):
    """A node's declaration uses something the V3 schema built here does not carry over."""


def socket_type(io_type: str) -> type[io.ComfyTypeIO]:
    """ComfyUI's own type for its sockets (MODEL, CLIP, ...); a custom one (io.Custom) for ours (SELMA_*)."""
    return _SOCKETS.get(io_type) or io.Custom(io_type)


def v3_input(node_id: str, name: str, spec: tuple, optional: bool) -> io.Input:
    kind, options = spec[0], dict(spec[1]) if len(spec) > 1 else {}
    widget = "COMBO" if isinstance(kind, list | tuple) else kind
    if widget not in _OPTIONS:
        if set(options) - {"tooltip"}:
            raise NodeDeclarationError(f"{node_id}.{name}: a {kind} socket has only a tooltip, not {sorted(options)}")
        return socket_type(kind).Input(name, optional=optional, tooltip=options.get("tooltip"))
    unknown = set(options) - set(_OPTIONS[widget])
    if unknown:
        raise NodeDeclarationError(
            f"{node_id}.{name}: option(s) {sorted(unknown)} of a {widget} input have no V3 counterpart here; "
            "add them to nodes/glue/v3_nodes.py"
        )
    arguments = {_OPTIONS[widget][key]: value for key, value in options.items()}
    if "forceInput" in arguments:
        arguments["force_input"] = arguments.pop("forceInput")
    if widget == "COMBO":
        return io.Combo.Input(name, options=list(kind), optional=optional, **arguments)
    return _WIDGETS[widget].Input(name, optional=optional, **arguments)


def v3_outputs(node: type) -> list[io.Output]:
    types, names = node.RETURN_TYPES, getattr(node, "RETURN_NAMES", node.RETURN_TYPES)
    tooltips = getattr(node, "OUTPUT_TOOLTIPS", (None,) * len(types))
    lists = getattr(node, "OUTPUT_IS_LIST", (False,) * len(types))
    return [
        socket_type(kind).Output(display_name=name, tooltip=tooltip, is_output_list=is_list)  # ids: ComfyUI's
        for kind, name, tooltip, is_list in zip(types, names, tooltips, lists, strict=True)
    ]


def v3_schema(node_id: str, display_name: str, node: type) -> io.Schema:
    declared = node.INPUT_TYPES()
    unknown = set(declared) - {"required", "optional", "hidden"}
    if unknown:
        raise NodeDeclarationError(f"{node_id}: INPUT_TYPES sections {sorted(unknown)} are not carried over")
    inputs = [
        v3_input(node_id, name, spec, optional=section == "optional")
        for section in ("required", "optional")
        for name, spec in declared.get(section, {}).items()
    ]
    return io.Schema(
        node_id=node_id,
        display_name=display_name,
        category=node.CATEGORY,
        description=node.DESCRIPTION,
        inputs=inputs,
        outputs=v3_outputs(node),
        hidden=[io.Hidden(value) for value in declared.get("hidden", {}).values()],
        is_input_list=getattr(node, "INPUT_IS_LIST", False),
        is_output_node=getattr(node, "OUTPUT_NODE", False),
        not_idempotent=getattr(node, "NOT_IDEMPOTENT", False),
    )


def node_output(result: Any) -> io.NodeOutput:
    """A classic node's return value ((outputs...) or {"ui": ..., "result": (outputs...)}) as a V3 NodeOutput."""
    if isinstance(result, dict):
        return io.NodeOutput(*result.get("result", ()), ui=result.get("ui"))
    return io.NodeOutput(*result)


def v3_node(node_id: str, display_name: str, node: type) -> type[io.ComfyNode]:
    """The V3 class for one declared node; ComfyUI calls `execute` (with `cls.hidden` set) on a locked clone."""
    hidden = node.INPUT_TYPES().get("hidden", {})  # argument name -> "UNIQUE_ID", "PROMPT", ...
    as_list = getattr(node, "INPUT_IS_LIST", False)  # a list node gets every argument as a list, hidden ones too

    def hidden_arguments(cls) -> dict[str, Any]:
        values = {name: getattr(cls.hidden, io.Hidden(value).name) for name, value in hidden.items()}
        return {name: [value] for name, value in values.items()} if as_list else values

    def define_schema(cls) -> io.Schema:
        return v3_schema(node_id, display_name, node)

    def execute(cls, **inputs) -> io.NodeOutput:
        return node_output(getattr(node(), node.FUNCTION)(**inputs, **hidden_arguments(cls)))

    body: dict[str, Any] = {
        "__doc__": node.__doc__ or node.DESCRIPTION,
        "__module__": node.__module__,
        "__qualname__": node.__qualname__,
        "DECLARATION": node,
        "define_schema": classmethod(define_schema),
        "execute": classmethod(execute),
    }
    if hasattr(node, "IS_CHANGED"):
        body["fingerprint_inputs"] = classmethod(lambda cls, **inputs: node.IS_CHANGED(**inputs))
    if hasattr(node, "VALIDATE_INPUTS"):
        body["validate_inputs"] = _validator(node)
    return type(node.__name__, (io.ComfyNode,), body)


def _validator(node: type) -> classmethod:
    """`validate_inputs` with the declaration's own signature: ComfyUI passes only the inputs a validator names."""
    validate = node.VALIDATE_INPUTS

    def validate_inputs(cls, **inputs):
        return validate(**inputs)

    validate_inputs.__signature__ = inspect.Signature(
        [inspect.Parameter("cls", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + list(inspect.signature(validate).parameters.values())
    )
    return classmethod(validate_inputs)


class SelmaExtension(ComfyExtension):
    """What `comfy_entrypoint` gives ComfyUI: every node, as V3 classes."""

    def __init__(self, declarations: dict[str, type], display_names: dict[str, str]):
        self.nodes = [v3_node(node_id, display_names[node_id], node) for node_id, node in declarations.items()]

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(self.nodes)
