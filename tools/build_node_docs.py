"""Write one documentation page per node, web/docs/<NodeId>.md: what ComfyUI's front end shows in a node's help
panel (it fetches /extensions/comfyui-selma/docs/<NodeId>.md).

    python tools/build_node_docs.py [--out web/docs]

Each page is built from the node class itself (display name, description, every input with its type, default,
range and tooltip, every output) and from two hand-written sources that already exist: the README's node table
(what the node does, in one line) and the shipped workflows that use it. tests/test_node_docs.py fails when a
page differs from what this script writes, so a changed node cannot leave its page behind.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # workflow_kit lives beside this file

from workflow_kit.schemas import REPO, _import_repo  # noqa: E402

DOCS = REPO / "web" / "docs"


def readme_rows() -> dict[str, str]:
    """The README's node table: display name -> what it does ("A / B" rows describe both)."""
    rows = {}
    section = REPO.joinpath("README.md").read_text(encoding="utf-8").split("## In ComfyUI", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("SELMA"):
            for name in cells[0].split(" / "):
                rows[name.strip()] = cells[1]
    return rows


def workflows_using(node_id: str) -> list[str]:
    names = []
    for path in sorted((REPO / "example_workflows").glob("*.json")):
        if any(n["type"] == node_id for n in json.loads(path.read_text(encoding="utf-8"))["nodes"]):
            names.append(path.stem)
    return names


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _kind_and_range(raw) -> tuple[str, str]:
    kind, options = raw[0], (raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {})
    if isinstance(kind, list):
        shown = ", ".join(f"`{c}`" for c in kind[:8]) + (", …" if len(kind) > 8 else "")
        return "choice", shown or "the matching files"
    parts = []
    if "default" in options and kind != "STRING":
        parts.append(f"default {options['default']}")
    elif options.get("default"):
        parts.append(f"default `{_cell(options['default'])}`")
    if "min" in options and "max" in options:
        parts.append(f"{options['min']}–{options['max']}")
    if options.get("multiline"):
        parts.append("multiline")
    return kind, ", ".join(parts)


def page(node_id: str, cls, display: str, does: str | None) -> str:
    types = cls.INPUT_TYPES()
    lines = [f"# {display}", "", cls.DESCRIPTION.strip(), ""]
    if does:
        lines += [f"**In short:** {does}", ""]
    lines += ["## Inputs", "", "| input | type | default / range | what it is |", "|---|---|---|---|"]
    for section in ("required", "optional"):
        for name, raw in types.get(section, {}).items():
            kind, extent = _kind_and_range(raw)
            options = raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {}
            label = f"`{name}`" + (" (optional)" if section == "optional" else "")
            lines.append(f"| {label} | {kind} | {_cell(extent)} | {_cell(options.get('tooltip', ''))} |")
    names = getattr(cls, "RETURN_NAMES", None) or [t.lower() for t in cls.RETURN_TYPES]
    tips = getattr(cls, "OUTPUT_TOOLTIPS", None) or [""] * len(names)
    lines += ["", "## Outputs", "", "| output | type | what it is |", "|---|---|---|"]
    for name, kind, tip in zip(names, cls.RETURN_TYPES, tips, strict=True):
        lines.append(f"| `{name}` | {kind} | {_cell(tip)} |")
    used = workflows_using(node_id)
    if used:
        lines += ["", "## In the shipped workflows", ""]
        lines += [f"- `{name}` (Browse Templates → comfyui-selma)" for name in used]
    lines += ["", f"Node id `{node_id}`. More in the package README: https://github.com/comfyui-selma/comfyui-selma"]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    package = _import_repo()
    rows = readme_rows()
    out = {}
    for node_id, cls in package.nodes.NODE_CLASS_MAPPINGS.items():
        display = package.nodes.NODE_DISPLAY_NAME_MAPPINGS.get(node_id, node_id)
        does = rows.get(display) or rows.get(re.sub(r" \(.*\)$", "", display))
        out[node_id] = page(node_id, cls, display, does)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written = pages()
    for stale in set(p.stem for p in args.out.glob("*.md")) - set(written):
        (args.out / f"{stale}.md").unlink()
    for node_id, text in written.items():
        (args.out / f"{node_id}.md").write_text(text, encoding="utf-8")
    print(f"wrote {len(written)} node pages to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
