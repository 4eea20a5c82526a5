"""The workflow's last nodes: base vs expert(s) side by side on held-out prompts, as a captioned grid, and as
numbers (SELMA Evaluator + SELMA Evaluate: DSG, VQAScore, CLIPScore and the scoreboard).

The native graph renders each column (the same prompts and seeds through KSampler, with and without the expert);
these nodes only turn the IMAGE batches into PIL images and call the core: `draw_comparison_grid` (the grid
`selma compare` draws, saved to output/selma/<run>/comparison/) and `score_images` + the scoreboard (what
`selma eval` writes, into output/selma/<run>/evaluation/<label>/...).
"""

from __future__ import annotations

import json

from ..selma.evaluation.answerer import ANSWERER_BACKENDS, AnswererConfig
from ..selma.evaluation.comparison import draw_comparison_grid, parse_labels, save_grid
from ..selma.evaluation.scoring import EvalConfig
from ..selma.pipeline.evaluate_config import register_checker_of
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


def image_columns(images_1, more: dict) -> list[list]:
    """The connected IMAGE inputs (images_1, then images_2.. that are connected) as lists of PIL images."""
    columns = [images_1] + [more[f"images_{k}"] for k in range(2, COLUMNS + 1) if more.get(f"images_{k}")]
    return [[image for batch in tensors_to_pil(column) for image in batch] for column in columns]


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
    OUTPUT_TOOLTIPS = ("the captioned grid", "the file it was saved to")
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
        pil_columns = image_columns(images_1, more)
        texts = split_prompts(prompts)
        labels = parse_labels(column_labels[0], len(pil_columns))
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


class SelmaEvaluator:
    DESCRIPTION = (
        "What scores the images: an answerer for DSG and VQAScore questions (a local chat VLM folder or hub id, a "
        "BLIP VQA model, or an OpenAI-compatible vision server — its key only by the NAME of an env variable), a "
        "CLIP model for CLIPScore, and (optional) the LLM that writes DSG questions."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SELMA_EVALUATOR",)
    RETURN_NAMES = ("evaluator",)
    OUTPUT_TOOLTIPS = ("the evaluator, for SELMA Evaluate and SELMA Filter Dataset",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "answerer": (
                    list(ANSWERER_BACKENDS),
                    {
                        "default": "transformers",
                        "tooltip": "a local VLM (transformers, blip), an API (openai) or the shapes checker",
                    },
                ),
                "answerer_model": (
                    "STRING",
                    {"default": "", "tooltip": "VLM/BLIP folder or hub id; server model name"},
                ),
                "clip_model": ("STRING", {"default": "", "tooltip": "CLIP folder or hub id ('' = no CLIPScore)"}),
                "metrics": ("STRING", {"default": "dsg,vqascore,clipscore", "tooltip": "comma-separated"}),
                "base_url": ("STRING", {"default": "", "tooltip": "openai answerer: the server's /v1 URL"}),
                "api_key_env": ("STRING", {"default": "OPENAI_API_KEY", "tooltip": "NAME of the env variable"}),
                "batch_size": ("INT", {"default": 8, "min": 1, "max": 256, "tooltip": "questions per answerer call"}),
            },
            "optional": {"llm": ("SELMA_LLM", {"tooltip": "writes DSG questions (default: the template backend)"})},
        }

    def make(self, answerer, answerer_model, clip_model, metrics, base_url, api_key_env, batch_size, llm=None):
        names = tuple(m.strip() for m in metrics.split(",") if m.strip())
        needs_answerer = {"dsg", "vqascore"} & set(names)
        config = AnswererConfig(answerer, answerer_model.strip(), base_url.strip(), api_key_env.strip(),
                                batch_size=batch_size) if needs_answerer else None  # fmt: skip
        register_checker_of(config)  # 'programmatic' + 'shapes': the shapes world's checker
        return (EvalConfig(metrics=names, answerer=config, clip_model=clip_model.strip(), llm=llm),)


class SelmaEvaluate:
    DESCRIPTION = (
        "Scores each connected IMAGE input (one variant: base, an expert, merged...; one image per prompt) for "
        "faithfulness to its prompt with DSG, VQAScore and CLIPScore, and draws the scoreboard: means with 95% "
        "intervals and differences vs the first input. Answers are cached in output/selma/<run>/evaluation/."
    )
    CATEGORY = CATEGORY
    INPUT_IS_LIST = True
    OUTPUT_NODE = True
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("scoreboard", "scoreboard_json")
    OUTPUT_TOOLTIPS = ("the scoreboard as a picture", "the scoreboard as JSON")
    FUNCTION = "evaluate"

    @classmethod
    def INPUT_TYPES(cls):
        image = {"tooltip": "one variant: VAE Decode output, one image per prompt"}
        return {
            "required": {
                "evaluator": ("SELMA_EVALUATOR", {"tooltip": "from SELMA Evaluator: the answerer and its settings"}),
                "images_1": ("IMAGE", image),
                "prompts": ("STRING", {"multiline": True, "default": "", "tooltip": "the prompts (list or lines)"}),
                "labels": ("STRING", {"default": "base,merged", "tooltip": "comma-separated; the first is the base"}),
                "skill": ("STRING", {"default": "custom", "tooltip": "the skill the prompts test"}),
                "run_name": ("STRING", {"default": "selma", "tooltip": "folder under output/selma/"}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip": "row r: seed + r"}),
            },
            "optional": {f"images_{k}": ("IMAGE", image) for k in range(2, COLUMNS + 1)},
        }

    def evaluate(self, evaluator, images_1, prompts, labels, skill, run_name, seed, **more):
        from .glue.evaluate import evaluate_columns

        pil_columns = image_columns(images_1, more)
        texts = split_prompts(prompts)
        grid_rows(pil_columns, len(texts))  # one image per prompt in every column, or a clear error
        names = parse_labels(labels[0], len(pil_columns))
        png, data = evaluate_columns(evaluator[0], dict(zip(names, pil_columns, strict=True)), texts, skill[0].strip(),
                                     run_directory(run_name[0].strip()), seed[0])  # fmt: skip
        return {"ui": {"text": [data["markdown"]]}, "result": (pil_to_tensor([png]), json.dumps(data["scoreboard"]))}


NODE_CLASS_MAPPINGS = {
    "SelmaCompareGrid": SelmaCompareGrid,
    "SelmaEvaluator": SelmaEvaluator,
    "SelmaEvaluate": SelmaEvaluate,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "SelmaCompareGrid": "SELMA Compare Grid",
    "SelmaEvaluator": "SELMA Evaluator",
    "SelmaEvaluate": "SELMA Evaluate",
}
