"""Contact sheets: layout for 1..N images, the cap, caption wrapping, missing images, and `selma preview`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image, ImageDraw

from selma.datasets.contact_sheet import (
    PAD,
    _font,
    contact_sheet,
    dataset_contact_sheet,
    default_sheet_path,
    sample_evenly,
    wrap_caption,
)
from selma.datasets.files import DatasetWriter

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200)]


def make_dataset(folder, count: int, size=(32, 32)):
    writer = DatasetWriter(folder)
    for i in range(count):
        writer.add(Image.new("RGB", size, COLOURS[i % len(COLOURS)]), f"prompt number {i} about a thing", i)
    return folder


def tile_centre(sheet: Image.Image, n: int, columns: int, thumb: int, title: bool = True) -> tuple:
    """The pixel at the centre of thumbnail n (layout as contact_sheet draws it)."""
    font = _font(max(10, thumb // 12))
    ascent, descent = font.getmetrics()
    line = ascent + descent + 1
    cell_w, cell_h = thumb + 2 * PAD, thumb + 2 * PAD + 3 * line
    top = (line + PAD) if title else 0
    x = (n % columns) * cell_w + PAD + thumb // 2
    y = top + (n // columns) * cell_h + PAD + thumb // 2
    return sheet.getpixel((x, y))


@pytest.mark.parametrize(("count", "columns", "rows"), [(1, 1, 1), (2, 2, 1), (5, 3, 2), (9, 3, 3), (10, 4, 3)])
def test_grid_shape_for_one_to_many_images(count, columns, rows):
    items = [(Image.new("RGB", (32, 32), COLOURS[i % 6]), f"caption {i}") for i in range(count)]
    sheet = contact_sheet(items, thumb_size=64)
    one = contact_sheet(items[:1], thumb_size=64)
    assert sheet.width == columns * one.width and sheet.height == rows * one.height
    for n in range(count):
        assert tile_centre(sheet, n, columns, 64, title=False) == COLOURS[n % 6]


def test_a_dataset_sheet_shows_every_image_with_its_colour(tmp_path):
    folder = make_dataset(tmp_path / "counting", 4)
    sheet = dataset_contact_sheet(folder, thumb_size=48)
    assert [tile_centre(sheet, n, 2, 48) for n in range(4)] == COLOURS[:4]


def test_the_cap_picks_an_even_spread_including_first_and_last(tmp_path):
    folder = make_dataset(tmp_path / "counting", 20)
    sheet = dataset_contact_sheet(folder, max_images=6, thumb_size=48)
    chosen = sample_evenly(20, 6)
    assert chosen == [0, 4, 8, 11, 15, 19]
    assert [tile_centre(sheet, n, 3, 48) for n in range(6)] == [COLOURS[i % 6] for i in chosen]
    assert sheet.size == dataset_contact_sheet(make_dataset(tmp_path / "six", 6), thumb_size=48).size


def test_sample_evenly():
    assert sample_evenly(3, 10) == [0, 1, 2]
    assert sample_evenly(100, 1) == [0]
    assert sample_evenly(100, 2) == [0, 99]


def test_large_and_non_square_images_fit_their_cell():
    wide = Image.new("RGB", (400, 100), (10, 120, 230))
    sheet = contact_sheet([(wide, "wide")], thumb_size=80)
    assert sheet.getpixel((PAD + 40, PAD + 40)) == (10, 120, 230)  # centre row of the letterboxed thumb
    assert sheet.getpixel((PAD + 40, PAD + 5)) == (255, 255, 255)  # above it: background


def test_captions_wrap_to_the_thumbnail_width_and_are_cut_with_an_ellipsis():
    font = _font(12)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    text = "two red apples on the left of a blue bowl " * 6
    lines = wrap_caption(text, font, 100, max_lines=3)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(measure(line, font=font) <= 100 for line in lines)
    short = wrap_caption("a cat on a mat", font, 100, max_lines=3)
    assert short == ["a cat on a mat"]
    long_word = wrap_caption("x" * 80, font, 60, max_lines=10)
    assert "".join(long_word) == "x" * 80 and all(measure(line, font=font) <= 60 for line in long_word)


def test_a_missing_image_draws_a_grey_tile(tmp_path):
    folder = make_dataset(tmp_path / "counting", 2)
    (folder / "000001.png").unlink()
    sheet = dataset_contact_sheet(folder, thumb_size=48)
    assert tile_centre(sheet, 0, 2, 48) == COLOURS[0]
    assert tile_centre(sheet, 1, 2, 48) == (200, 200, 200)


def test_bad_input():
    with pytest.raises(ValueError, match=r"contact_sheet needs at least one \(image, caption\) pair"):
        contact_sheet([])
    with pytest.raises(ValueError, match=r"max_images=0 must be >= 1"):
        dataset_contact_sheet("unused", max_images=0)


def test_a_folder_that_is_not_a_dataset(tmp_path):
    with pytest.raises(ValueError, match=r"has no metadata.jsonl"):
        dataset_contact_sheet(tmp_path)


def test_preview_command_writes_the_sheet(tmp_path):
    folder = make_dataset(tmp_path / "datasets" / "counting", 7)

    def preview(*args):
        return subprocess.run(
            [sys.executable, "-m", "selma", "preview", *args], capture_output=True, text=True, timeout=120
        )

    out = preview(str(folder), "--max", "4")
    assert out.returncode == 0, out.stderr
    default = default_sheet_path(folder)
    assert default == tmp_path / "datasets" / "counting_contact_sheet.png" and out.stdout.strip() == str(default)
    with Image.open(default) as sheet:
        assert sheet.format == "PNG" and sheet.size == dataset_contact_sheet(folder, max_images=4).size
    out = preview(str(folder), "-o", str(tmp_path / "sheet.png"))
    assert out.returncode == 0 and (tmp_path / "sheet.png").is_file()
    out = preview(str(tmp_path / "nothing"))
    assert out.returncode == 2 and "does not exist" in out.stderr
