"""ComfyUI entry point of comfyui-selma: ComfyUI imports this folder as a package."""

if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
else:
    # Imported as a plain module, not as ComfyUI's package: pytest does this when it collects tests from a
    # checkout whose folder name is not an identifier (e.g. a clone in /tmp/tmp.X). There are no nodes then.
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
