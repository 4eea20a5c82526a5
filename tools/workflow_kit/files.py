"""Build one workflow spec into a graph and write its three files."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from . import serialize
from .graph import Graph
from .schemas import NodeSpec
from .thumbnail import thumbnail


def missing_nodes(spec: ModuleType, specs: dict[str, NodeSpec]) -> list[str]:
    """The node types `spec` needs (its NEEDS) that these schemas lack."""
    return [n for n in getattr(spec, "NEEDS", ()) if n not in specs]


def build(spec: ModuleType, specs: dict[str, NodeSpec]) -> Graph:
    """A spec module (TITLE, STAGES, build(g)) as a graph named after the module."""
    graph = Graph(spec.__name__.rpartition(".")[2], spec.TITLE, list(spec.STAGES), specs)
    spec.build(graph)
    return graph


def write(graph: Graph, ui_folder: Path, api_folder: Path) -> None:
    """<name>.json (UI) and <name>.jpg (thumbnail) in `ui_folder`, <name>_api.json (API prompt) in `api_folder`.

    Two folders because of how ComfyUI 0.3.64 lists and serves templates: it lists the *.json of every folder
    named example_workflows, example, examples, workflow or workflows, but serves only the first that exists; so
    the UI files go to example_workflows/ (the name it documents) and the API twins where it does not look."""
    ui_folder.mkdir(parents=True, exist_ok=True)
    api_folder.mkdir(parents=True, exist_ok=True)
    (ui_folder / f"{graph.name}.json").write_text(json.dumps(serialize.ui(graph), indent=2) + "\n")
    (api_folder / f"{graph.name}_api.json").write_text(json.dumps(serialize.api(graph), indent=2) + "\n")
    thumbnail(graph, ui_folder / f"{graph.name}.jpg")
