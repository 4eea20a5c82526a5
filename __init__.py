"""ComfyUI entry point of comfyui-selma: ComfyUI imports this folder as a package and calls `comfy_entrypoint`.

The nodes reach ComfyUI as V3 nodes (comfy_api.latest, built in nodes/glue/v3_nodes.py from the declarations in
nodes/). There is deliberately no NODE_CLASS_MAPPINGS here: ComfyUI 0.3.64 prefers it over `comfy_entrypoint`
when both exist, and would register the classic classes instead. The declarations stay importable without
ComfyUI as `nodes.NODE_CLASS_MAPPINGS` (tests and tools use them).
"""

WEB_DIRECTORY = "./web"

if __package__:
    from . import nodes

    async def comfy_entrypoint():
        from .nodes.glue.v3_nodes import SelmaExtension

        return SelmaExtension(nodes.NODE_CLASS_MAPPINGS, nodes.NODE_DISPLAY_NAME_MAPPINGS)

    __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
else:
    # Imported as a plain module, not as ComfyUI's package: pytest does this when it collects tests from a
    # checkout whose folder name is not an identifier (e.g. a clone in /tmp/tmp.X). There are no nodes then.
    __all__ = ["WEB_DIRECTORY"]
