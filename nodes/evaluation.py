"""The workflow's last node: base vs expert(s) side by side on held-out prompts, as one captioned grid.

The native graph renders each column (the same prompts and seeds through KSampler, with and without the expert);
this node only turns the IMAGE batches into PIL images and calls the core's `draw_comparison_grid` (the same
grid `selma compare` draws), then saves the PNG to output/selma/<run>/comparison/.
"""

from __future__ import annotations

from ..selma.evaluation.comparison import draw_comparison_grid, parse_labels, save_grid
from .glue.comfy_env import output_directory, run_directory
from .glue.images import pil_to_tensor, tensors_to_pil

CATEGORY = "SELMA/experts"
COLUMNS = 4


def split_prompts(prompts: list[str]) -> list[str]:
    """The row prompts: a STRING list as it is, or one multi-line string split into its non-empty lines."""
    texts = [str(p) for p in prompts]
    if len(texts) == 1:
        texts = texts[0].splitlines()
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise ValueError("no prompts: connect the held-out prompt list, or type one prompt per line")
    return texts


def grid_rows(columns: list[list], rows: int) -> list[list]:
    """rows[r][c] from per-column image lists; every column must hold one image per prompt."""
    bad = [(c, len(images)) for c, images in enumerate(columns) if len(images) != rows]
    if bad:
        c, n = bad[0]
        raise ValueError(
            f"images_{c + 1} holds {n} image(s) but there are {rows} prompt(s); every column needs one image per "
            "prompt, in prompt order (render each column from the same prompt list)"
        )
    return [[column[r] for column in columns] for r in range(rows)]


class SelmaCompareGrid:
    DESCRIPTION = (
        "Draws base vs expert(s) side by side: one column per connected IMAGE input (one image per prompt), one row "
        "per prompt with the prompt underneath, column labels on top; saves it to output/selma/<run>/comparison/."
    )
    CATEGORY = CATEGORY
    INPUT_IS_LIST = True
    OUTPUT_NODE = True
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("grid", "path")
    FUNCTION = "draw"

    @classmethod
    def INPUT_TYPES(cls):
        image = {"tooltip": "one column: VAE Decode output, one image per prompt (one batch per prompt is fine)"}
        return {
            "required": {
                "images_1": ("IMAGE", image),
                "prompts": (
                    "STRING",
                    {"multiline": True, "default": "", "tooltip": "the row prompts (list or lines)"},
                ),
                "column_labels": ("STRING", {"default": "base,merged", "tooltip": "comma-separated, one per column"}),
                "run_name": ("STRING", {"default": "selma", "tooltip": "folder under output/selma/"}),
                "cell_size": ("INT", {"default": 256, "min": 32, "max": 1024, "tooltip": "pixels per image cell"}),
            },
            "optional": {f"images_{k}": ("IMAGE", image) for k in range(2, COLUMNS + 1)},
        }

    def draw(self, images_1, prompts, column_labels, run_name, cell_size, **more):
        columns = [images_1] + [more[f"images_{k}"] for k in range(2, COLUMNS + 1) if more.get(f"images_{k}")]
        pil_columns = [[image for batch in tensors_to_pil(column) for image in batch] for column in columns]
        texts = split_prompts(prompts)
        labels = parse_labels(column_labels[0], len(columns))
        grid = draw_comparison_grid(grid_rows(pil_columns, len(texts)), labels, texts, cell_size=cell_size[0])
        folder = run_directory(run_name[0].strip()) / "comparison"
        path = save_grid(grid, _next_free(folder, "comparison"))
        subfolder = path.parent.relative_to(output_directory()).as_posix()
        ui = {"images": [{"filename": path.name, "subfolder": subfolder, "type": "output"}]}
        return {"ui": ui, "result": (pil_to_tensor([grid]), str(path))}


def _next_free(folder, prefix: str):
    """folder/prefix_00001.png, the first number not taken (a rerun never overwrites an earlier grid)."""
    k = 1
    while (folder / f"{prefix}_{k:05d}.png").exists():
        k += 1
    return folder / f"{prefix}_{k:05d}.png"


NODE_CLASS_MAPPINGS = {"SelmaCompareGrid": SelmaCompareGrid}
NODE_DISPLAY_NAME_MAPPINGS = {"SelmaCompareGrid": "SELMA Compare Grid"}
