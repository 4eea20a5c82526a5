"""Write the shipped workflows (UI format + API-format twin + .jpg thumbnail) from one Python description each.

    python tools/build_workflows.py [--object-info PATH] [--ui-out example_workflows] [--api-out api_workflows]

One spec per workflow in tools/workflow_specs/<name>.py, over the shared machinery in tools/workflow_kit/. Node
schemas come from our node classes (this repo imported as ComfyUI imports it) and from a real ComfyUI's
/object_info dump, so widget order and socket types are the ones ComfyUI will use. Workflows whose nodes do not
exist yet (e.g. StyleInject nodes) are skipped with a message. tests/test_workflows.py validates the written files
themselves, not this script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # workflow_kit, workflow_specs live beside this file

import workflow_kit as kit  # noqa: E402
from workflow_specs import SPECS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--object-info", type=Path, default=kit.OBJECT_INFO)
    parser.add_argument("--ui-out", type=Path, default=kit.REPO / "example_workflows", help="UI files (templates)")
    parser.add_argument("--api-out", type=Path, default=kit.REPO / "api_workflows", help="API twins (comfy run)")
    args = parser.parse_args(argv)
    specs = kit.load_schemas(args.object_info)
    for spec in SPECS:
        graph_name = spec.__name__.rpartition(".")[2]
        missing = kit.missing_nodes(spec, specs)
        if missing:
            print(f"skip {graph_name}: nodes {missing} do not exist yet")
            continue
        graph = kit.build(spec, specs)
        kit.write(graph, args.ui_out, args.api_out)
        print(f"wrote {graph.name}: {len(graph.nodes)} nodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
