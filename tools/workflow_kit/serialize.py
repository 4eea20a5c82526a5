"""The two file formats: the UI workflow (nodes, links, layout) and its API-format twin (what the server runs)."""

from __future__ import annotations

import uuid

from . import layout
from .graph import NOTE_TYPE, Graph, Node, Out
from .schemas import InputSpec

DEFAULT_WIDGET_VALUES = {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}


def ui(graph: Graph) -> dict:
    positions, links, ui_nodes = layout.positions(graph), [], {}
    order = {node.id: k for k, node in enumerate(layout.execution_order(graph))}
    for node in graph.nodes:
        common = {
            "id": node.id,
            "type": node.type,
            "pos": list(positions[node.id]),
            "size": list(layout.size(graph, node)),
            "flags": {},
            "order": order[node.id],
            "mode": 0,
        }
        if node.type == NOTE_TYPE:
            ui_nodes[node.id] = _ui_note(node, common)
            continue
        inputs, widgets = _ui_inputs(graph, node, links)
        ui_nodes[node.id] = {
            **common,
            "inputs": inputs,
            "outputs": _ui_outputs(graph, node),
            "properties": {"Node name for S&R": node.type},
            "widgets_values": widgets,
        }
        if node.title:
            ui_nodes[node.id]["title"] = node.title
    for link_id, source, slot, *_ in links:
        ui_nodes[source]["outputs"][slot]["links"].append(link_id)
    for node in ui_nodes.values():
        for output in node["outputs"]:
            output["links"] = output["links"] or None
    return {
        # The front end validates a workflow's id as a UUID (an alert on load otherwise); a name-based one stays
        # the same across rebuilds.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://github.com/comfyui-selma/comfyui-selma/{graph.name}")),
        "revision": 0,
        "last_node_id": max(ui_nodes),
        "last_link_id": len(links),
        "nodes": list(ui_nodes.values()),
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.6, "offset": [520, 40]}},
        "version": 0.4,
    }


def _ui_note(node: Node, common: dict) -> dict:
    return {
        **common,
        "inputs": [],
        "outputs": [],
        "title": node.title or "Read me",
        "properties": {},
        "widgets_values": [node.values["text"]],
        "color": "#432",
        "bgcolor": "#653",
    }


def _ui_inputs(graph: Graph, node: Node, links: list) -> tuple[list, list]:
    """The node's input sockets and widget values; appends the links into it to `links`."""
    spec = graph.specs[node.type]
    unknown = set(node.values) - {i.name for i in spec.inputs}
    if unknown:
        raise KeyError(f"{node.type} has no input(s) {sorted(unknown)}")
    inputs, widgets = [], []
    for spec_input in spec.inputs:
        value = node.values.get(spec_input.name)
        linked = isinstance(value, Out)
        if spec_input.is_widget:
            widget_value = spec_input.options.get("default") if linked or value is None else value
            if widget_value is None and spec_input.type == "COMBO":
                widget_value = spec_input.choices[0]
            if widget_value is None:
                widget_value = DEFAULT_WIDGET_VALUES[spec_input.type]
            widgets.append(widget_value)
            if spec_input.has_control:
                widgets.append("fixed")
            if not linked:
                continue
        elif value is None and spec_input.required:
            raise ValueError(f"{node.type}.{spec_input.name} (required socket) is not connected")
        entry = {"name": spec_input.name, "type": spec_input.type, "link": None}
        if spec_input.is_widget:
            entry["widget"] = {"name": spec_input.name}
        if linked:
            link_id = len(links) + 1
            source = value.node
            # The front end types a link by its source output (a '*' input takes any type).
            link_type = graph.specs[source.type].outputs[value.slot][0]
            links.append([link_id, source.id, value.slot, node.id, len(inputs), link_type])
            entry["link"] = link_id
        inputs.append(entry)
    return inputs, widgets


def _ui_outputs(graph: Graph, node: Node) -> list:
    outputs = []
    for slot, (kind, name, is_list) in enumerate(graph.specs[node.type].outputs):
        output = {"name": name, "type": kind, "links": [], "slot_index": slot}
        if is_list:
            output["shape"] = 6  # the front end draws list outputs with a grid-shaped dot
        outputs.append(output)
    return outputs


def api(graph: Graph) -> dict:
    prompt = {}
    for node in graph.nodes:
        if node.type == NOTE_TYPE:
            continue
        inputs = {}
        for spec_input in graph.specs[node.type].inputs:
            value = node.values.get(spec_input.name)
            if isinstance(value, Out):
                inputs[spec_input.name] = [str(value.node.id), value.slot]
            elif spec_input.is_widget:
                inputs[spec_input.name] = _ui_widget_value(graph, node, spec_input)
        prompt[str(node.id)] = {
            "class_type": node.type,
            "inputs": inputs,
            "_meta": {"title": node.title or node.type},
        }
    return prompt


def _ui_widget_value(graph: Graph, node: Node, spec_input: InputSpec):
    """The value the UI file stores for this widget, so the two formats agree."""
    ui_node = next(n for n in ui(graph)["nodes"] if n["id"] == node.id)
    widgets = [i for i in graph.specs[node.type].inputs if i.is_widget]
    index = 0
    for candidate in widgets:
        if candidate.name == spec_input.name:
            return ui_node["widgets_values"][index]
        index += 1 + candidate.has_control
    raise KeyError(spec_input.name)
