"""Evaluation: the base model, each skill expert and the merged expert on held-out prompts ->
comparison grids (the same seed per row) under RUN_DIR/compare/.

`comparison` (render the columns, draw the captioned grid).
"""

from ..lazy import lazy_exports

_LAZY = {
    "CompareConfig": ".comparison",
    "compare_experts": ".comparison",
    "compare_skills": ".comparison",
    "draw_comparison_grid": ".comparison",
    "save_grid": ".comparison",
}
__getattr__, __all__ = lazy_exports(__name__, _LAZY)
