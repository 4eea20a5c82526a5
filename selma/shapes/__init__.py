"""The shapes world (issue #13): procedurally drawn flat circles, squares and triangles whose prompts can be checked
exactly, for training and scoring skill experts without a VLM in the loop.

`world` (the scene dataclasses, random scenes without overlaps, the renderer, captions and their DSG scenes, the
layout of a grammar's prompt), `parse` (a prompt of the world back into its spec), `detect` (the objects in a
picture) and `checker` (the programmatic answerer `AnswererConfig(backend="programmatic", model="shapes")`,
registered when `selma.shapes.checker` is imported). The prompts' language is `selma.llm.grammars.shapes` (the
`shapes_counting`, `shapes_spatial` and `shapes_colour` template grammars) over `selma/llm/vocab/shapes.json`.
"""

from ..lazy import lazy_exports

_LAZY = {
    "SHAPES": ".world",
    "COLOURS": ".world",
    "SIZES": ".world",
    "ShapeObject": ".world",
    "Scene": ".world",
    "random_scene": ".world",
    "render": ".world",
    "caption": ".world",
    "caption_scene": ".world",
    "scene_for_prompt": ".world",
    "spec_of": ".world",
    "layout": ".world",
    "parse_prompt": ".parse",
    "find_objects": ".detect",
}
__getattr__, __all__ = lazy_exports(__name__, _LAZY)
