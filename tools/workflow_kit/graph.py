"""The graph a workflow spec builds: nodes with widget values and links (`Out`) to other nodes' outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from .schemas import NodeSpec

NOTE_TYPE = "MarkdownNote"  # a front-end-only node: saved in UI workflows, never sent to the server


@dataclass(frozen=True)
class Out:
    """Output `slot` of `node`; pass it as an input value to link the two."""

    node: Node
    slot: int


@dataclass(eq=False)
class Node:
    id: int
    type: str
    values: dict  # input name -> widget value or Out
    graph: Graph = field(repr=False)
    title: str | None = None
    column: int = 0
    size: tuple[int, int] | None = None

    def out(self, name_or_slot: str | int = 0) -> Out:
        if isinstance(name_or_slot, int):
            return Out(self, name_or_slot)
        names = [name for _, name, _ in self.graph.specs[self.type].outputs]
        return Out(self, names.index(name_or_slot))


@dataclass
class Graph:
    name: str  # the file stem in example_workflows/ (and api_workflows/<name>_api.json)
    title: str  # drawn on the thumbnail
    stages: list[str]  # the thumbnail's boxes
    specs: dict[str, NodeSpec]
    nodes: list[Node] = field(default_factory=list)

    def add(self, class_type: str, title: str | None = None, **values) -> Node:
        if class_type not in self.specs and class_type != NOTE_TYPE:
            raise KeyError(f"unknown node type {class_type!r}")
        node = Node(len(self.nodes) + 1, class_type, values, self, title)
        self.nodes.append(node)
        return node
