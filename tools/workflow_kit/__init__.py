"""Shared machinery of tools/build_workflows.py: schemas, graphs, layout, UI/API files, thumbnails, notes.

A workflow spec (tools/workflow_specs/<name>.py) imports what it needs from here.
"""

from .files import build, missing_nodes, write
from .graph import NOTE_TYPE, Graph, Node, Out
from .pieces import base_vs_merged, compare, evaluate, held_out_prompts, loaders, merge, render, skill_expert, train
from .schemas import OBJECT_INFO, REPO, InputSpec, NodeSpec, load_schemas
from .smoke import SMOKE, SMOKE_SETTINGS, note, note_text

__all__ = [
    "NOTE_TYPE",
    "OBJECT_INFO",
    "REPO",
    "SMOKE",
    "SMOKE_SETTINGS",
    "Graph",
    "InputSpec",
    "Node",
    "NodeSpec",
    "Out",
    "base_vs_merged",
    "build",
    "compare",
    "evaluate",
    "held_out_prompts",
    "load_schemas",
    "loaders",
    "merge",
    "missing_nodes",
    "note",
    "note_text",
    "render",
    "skill_expert",
    "train",
    "write",
]
