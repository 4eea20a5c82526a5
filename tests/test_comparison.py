"""The comparison grid: drawing (PIL only), adapter switching on a tiny real SD pipeline, `selma compare`, the node."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from selma.cli import main
from selma.evaluation.comparison import (
    CompareConfig,
    ExpertColumns,
    compare_experts,
    draw_comparison_grid,
    parse_labels,
    render_rows,
)
from selma.experts.lora_expert import LoraExpert, LoraModule
from selma.experts.lora_files import save_lora_expert
from selma.testing.tiny_models import build_tiny_sd

PROMPTS = ["two red cubes", "a cat left of a dog"]
RENDER = {"steps": 2, "guidance": 7.5, "seed": 3, "resolution": 32}


def solid(color, size=(32, 32)) -> Image.Image:
    return Image.new("RGB", size, color)


def test_grid_places_each_image_in_its_cell_under_its_column_label():
    colors = [[(255, 0, 0), (0, 255, 0), (0, 0, 255)], [(255, 255, 0), (0, 255, 255), (255, 0, 255)]]
    rows = [[solid(c) for c in row] for row in colors]
    grid = draw_comparison_grid(rows, ["base", "counting", "merged"], PROMPTS, cell_size=64)
    pixels = np.asarray(grid)
    assert grid.width == 6 + 3 * (64 + 6)
    column = pixels[:, 6 + 32]  # a vertical line through the first column's cells
    top = next(y for y in range(pixels.shape[0]) if tuple(column[y]) == colors[0][0])
    assert top > 0 and pixels[:top].min() < 100, "the column labels are written above the first row"
    assert sum(tuple(p) == colors[0][0] for p in column) == 64, "a 32 px image fills its 64 px cell (not blurred)"
    for c in range(3):
        assert tuple(pixels[top + 32, 6 + c * 70 + 32]) == colors[0][c]
    row_h = next(y for y in range(top, pixels.shape[0]) if tuple(column[y]) == colors[1][0]) - top
    for c in range(3):
        assert tuple(pixels[top + row_h + 32, 6 + c * 70 + 32]) == colors[1][c]
    assert pixels[top + 64 : top + row_h].min() < 100, "the prompt is written under its row"


def test_grid_with_a_missing_image_draws_a_grey_tile():
    grid = draw_comparison_grid([[solid((255, 0, 0)), None]], ["base", "x"], ["p"], cell_size=32)
    assert (200, 200, 200) in {tuple(p) for p in np.asarray(grid).reshape(-1, 3)}


def test_grid_rejects_a_row_with_the_wrong_number_of_images():
    with pytest.raises(ValueError, match=r"row 1 has 1 image\(s\) but there are 2 column label\(s\)"):
        draw_comparison_grid([[solid(0), solid(0)], [solid(0)]], ["a", "b"], ["p", "q"])


def test_grid_rejects_a_caption_count_that_is_not_the_row_count():
    with pytest.raises(ValueError, match=r"1 caption\(s\) for 2 row\(s\)"):
        draw_comparison_grid([[solid(0)], [solid(0)]], ["a"], ["p"])


def test_labels_are_padded_and_too_many_are_refused():
    assert parse_labels("base, merged", 3) == ["base", "merged", "column 3"]
    with pytest.raises(ValueError, match=r"3 column label\(s\) \(a, b, c\) for 2 column"):
        parse_labels("a,b,c", 2)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("steps", 0, r"CompareConfig.steps=0 must be an integer in 1..1000"),
        ("guidance", -1.0, r"CompareConfig.guidance=-1.0 must be a number in \[0, 100\)"),
        ("seed", -2, r"CompareConfig.seed=-2 must be an integer"),
        ("resolution", 30, r"CompareConfig.resolution=30 must be a positive multiple of 8"),
    ],
)
def test_compare_config_rejects(field, value, match):
    with pytest.raises(ValueError, match=match):
        CompareConfig(**{field: value})


@pytest.fixture(scope="module")
def tiny_pipe():
    pipe = build_tiny_sd(sample_size=32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def strong_expert(unet, seed: int) -> LoraExpert:
    """Big random factors on every self-attention query: a column that must look different from the base."""
    gen = torch.Generator().manual_seed(seed)
    modules = {}
    for name, module in unet.named_modules():
        if name.endswith("attn1.to_q"):
            out_f, in_f = module.weight.shape
            modules[name] = LoraModule(torch.randn(4, in_f, generator=gen), torch.randn(out_f, 4, generator=gen), 4.0)
    return LoraExpert(modules, {"skill": f"s{seed}"})


@pytest.fixture(scope="module")
def expert_files(tiny_pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("experts")
    return {
        name: save_lora_expert(folder / f"{name}.safetensors", strong_expert(tiny_pipe.unet, seed))
        for name, seed in (("counting", 1), ("spatial", 2))
    }


def test_columns_share_each_rows_seed_and_switch_adapters_without_reloading(tiny_pipe, expert_files):
    unet_id = id(tiny_pipe.unet)
    columns = {"base": None, "again": "none", **expert_files}
    with ExpertColumns(tiny_pipe, columns) as loaded:
        rows = render_rows(tiny_pipe, loaded, PROMPTS, CompareConfig(**RENDER))
        assert sorted(tiny_pipe.unet.peft_config) == ["selma_compare_2", "selma_compare_3"], "one adapter per expert"
    arrays = [[np.asarray(image) for image in row] for row in rows]
    for row in arrays:
        assert np.array_equal(row[0], row[1]), "two base columns with the row's seed render the same image"
        assert not np.array_equal(row[0], row[2]) and not np.array_equal(row[2], row[3]), "each expert is its own"
    assert not np.array_equal(arrays[0][0], arrays[1][0]), "rows differ (their prompts and seeds do)"
    assert id(tiny_pipe.unet) == unet_id and not getattr(tiny_pipe.unet, "peft_config", {}), "adapters removed"
    plain = tiny_pipe(
        PROMPTS[1],
        num_inference_steps=2,
        guidance_scale=7.5,
        height=32,
        width=32,
        generator=torch.Generator("cpu").manual_seed(3 + 1),
    ).images[0]
    assert np.array_equal(np.asarray(plain), arrays[1][0]), "the base column is the plain model at seed + row"


def test_compare_experts_returns_a_captioned_grid(tiny_pipe, expert_files):
    seen = []
    grid = compare_experts(
        tiny_pipe,
        {"base": None, "counting": expert_files["counting"]},
        PROMPTS,
        on_progress=lambda d, t: seen.append((d, t)),
        **RENDER,
    )
    assert grid.width == 6 + 2 * 166 and seen[-1] == (4, 4)


def test_compare_experts_names_a_missing_expert_file(tiny_pipe, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"expert file for column 'x' not found"):
        compare_experts(tiny_pipe, {"x": tmp_path / "nope.safetensors"}, PROMPTS, **RENDER)


def test_compare_experts_refuses_a_single_string_of_prompts(tiny_pipe):
    with pytest.raises(ValueError, match="must be a list of strings, not one string"):
        compare_experts(tiny_pipe, {"base": None}, "a cat", **RENDER)


def test_cli_compare_writes_the_grid(tiny_pipe, expert_files, tmp_path, capsys):
    model = tmp_path / "model"
    build_tiny_sd(model, sample_size=32)  # a fresh copy: PEFT leaves its (empty) wrappers in tiny_pipe's UNet
    out = tmp_path / "grid.png"
    args = [
        "compare",
        "--model",
        str(model),
        "--expert",
        "base=none",
        "--expert",
        f"counting={expert_files['counting']}",
    ]
    args += ["--prompt", PROMPTS[0], "--steps", "2", "--resolution", "32", "--device", "cpu", "-o", str(out)]
    assert main(args) == 0
    with Image.open(out) as grid:
        assert grid.width == 6 + 2 * 166
    assert "1 prompt(s) x 2 column(s)" in capsys.readouterr().out


def test_cli_compare_rejects_an_expert_without_a_label(capsys):
    assert main(["compare", "--model", "m", "--expert", "x.safetensors", "--prompt", "p", "-o", "g.png"]) == 2
    assert "--expert 'x.safetensors' must be LABEL=FILE" in capsys.readouterr().err


def test_cli_compare_says_what_is_missing(capsys):
    assert main(["compare", "--model", "m"]) == 2
    assert "missing --expert, --prompt, -o" in capsys.readouterr().err


# --- the node ------------------------------------------------------------------------------------------------------


def test_node_draws_and_saves_the_grid_from_image_batches(node_package, tmp_path, monkeypatch):
    monkeypatch.setenv("SELMA_OUTPUT_DIR", str(tmp_path))
    node = node_package.nodes.evaluation.SelmaCompareGrid()
    base = [torch.full((1, 32, 32, 3), 1.0), torch.full((1, 32, 32, 3), 0.0)]  # one batch per prompt (fan-out)
    merged = [torch.full((2, 32, 32, 3), 0.5)]  # or one batch of one image per prompt
    out = node.draw(base, ["two red cubes\na cat left of a dog"], ["base, merged"], ["run1"], [64], images_2=merged)
    grid, path = out["result"]
    assert grid.shape[0] == 1 and grid.shape[3] == 3 and grid.shape[2] == 6 + 2 * 70
    assert path == str(tmp_path / "selma" / "run1" / "comparison" / "comparison_00001.png")
    assert out["ui"]["images"] == [
        {"filename": "comparison_00001.png", "subfolder": "selma/run1/comparison", "type": "output"}
    ]
    with Image.open(path) as saved:
        assert np.allclose(np.asarray(saved, dtype=np.float32) / 255.0, grid[0].numpy(), atol=1 / 255)
    again = node.draw(base, PROMPTS, ["base"], ["run1"], [64], images_2=merged)
    assert again["result"][1].endswith("comparison_00002.png"), "a rerun never overwrites an earlier grid"


def test_node_names_the_column_whose_image_count_is_not_the_prompt_count(node_package, tmp_path, monkeypatch):
    monkeypatch.setenv("SELMA_OUTPUT_DIR", str(tmp_path))
    node = node_package.nodes.evaluation.SelmaCompareGrid()
    images = [torch.zeros(2, 32, 32, 3)]
    with pytest.raises(ValueError, match=r"images_2 holds 1 image\(s\) but there are 2 prompt\(s\)"):
        node.draw(images, PROMPTS, ["a,b"], ["run1"], [64], images_2=[torch.zeros(1, 32, 32, 3)])
    assert not (tmp_path / "selma").exists(), "nothing saved when the inputs do not check out"
