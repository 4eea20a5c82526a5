"""Every node has a help page that ComfyUI's front end shows (web/docs/<NodeId>.md, written by
tools/build_node_docs.py) and a tooltip on every input and output (what the UI shows on hover, and what the page
lists). A page that the script would write differently is stale: a node changed and its page did not."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "web" / "docs"


def build_node_docs():
    spec = importlib.util.spec_from_file_location("build_node_docs", REPO / "tools" / "build_node_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_node_has_its_page_and_no_page_is_stale(node_package):
    written = build_node_docs().pages()
    assert set(written) == set(node_package.nodes.NODE_CLASS_MAPPINGS)
    assert {p.stem for p in DOCS.glob("*.md")} == set(written), "run python tools/build_node_docs.py"
    for node_id, text in written.items():
        assert (DOCS / f"{node_id}.md").read_text(encoding="utf-8") == text, f"{node_id}: run tools/build_node_docs.py"


def test_every_input_and_output_has_a_tooltip(node_package):
    for node_id, cls in node_package.nodes.NODE_CLASS_MAPPINGS.items():
        for section, inputs in cls.INPUT_TYPES().items():
            if section == "hidden":
                continue
            for name, raw in inputs.items():
                options = raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {}
                assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"
        tips = getattr(cls, "OUTPUT_TOOLTIPS", ())
        assert len(tips) == len(cls.RETURN_TYPES) and all(tips), f"{node_id}: one tooltip per output"


def test_a_page_says_what_the_node_does_and_lists_its_inputs(node_package):
    text = (DOCS / "SelmaTrainExpert.md").read_text(encoding="utf-8")
    assert text.startswith("# SELMA Train Expert\n")
    assert "**In short:**" in text  # the README's row for it
    assert "| `rank` | INT | default 128, 1–1024 | SELMA: 128 |" in text
    assert "- `selma_train_expert` (Browse Templates → comfyui-selma)" in text


@pytest.mark.comfyui
def test_comfyui_serves_the_pages_where_the_front_end_asks(comfy_server):
    """The front end asks /extensions/<package>/docs/<NodeId>/<locale>.md, then .../docs/<NodeId>.md."""
    for page in DOCS.glob("*.md"):
        status, body = comfy_server.get(f"/extensions/comfyui-selma/docs/{page.name}")
        assert status == 200 and body.decode("utf-8") == page.read_text(encoding="utf-8"), page.name
