"""A contact sheet: a grid of thumbnails, each with its caption wrapped underneath (PIL only).

Used by `selma preview`, the demo and the dataset loader node to look at a dataset at a glance. For
more images than `max_images`, an evenly spaced sample is shown, so the sheet covers the whole set.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..atomic_files import write_bytes_atomic
from .files import read_dataset

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MISSING = (200, 200, 200)
PAD = 6


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # a scalable font when Pillow has FreeType
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def _line_height(font) -> int:
    if hasattr(font, "getmetrics"):
        ascent, descent = font.getmetrics()
        return ascent + descent + 1
    left, top, right, bottom = font.getbbox("Ayg|")
    return bottom + 2


def wrap_caption(text: str, font, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap to `width` pixels, at most `max_lines` lines; a cut caption ends in '…'. Words wider
    than a line are split by character."""
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if measure(candidate, font=font) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for char in word:  # a word longer than the line: break it where it overflows
            if measure(current + char, font=font) > width and current:
                lines.append(current)
                current = ""
            current += char
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and measure(last + "…", font=font) > width:
            last = last[:-1]
        lines = lines[: max_lines - 1] + [last.rstrip() + "…"]
    return lines


def contact_sheet(
    items: Sequence[tuple[Image.Image | None, str]],
    *,
    thumb_size: int = 160,
    columns: int | None = None,
    caption_lines: int = 3,
    title: str = "",
) -> Image.Image:
    """A grid of (image, caption) pairs; an image of None draws a grey 'missing' tile. Columns default to
    about the square root of the count."""
    if not items:
        raise ValueError("contact_sheet needs at least one (image, caption) pair")
    if thumb_size < 16 or caption_lines < 1:
        raise ValueError(f"thumb_size={thumb_size} must be >= 16 and caption_lines={caption_lines} >= 1")
    columns = max(1, min(columns or math.ceil(math.sqrt(len(items))), len(items)))
    rows = math.ceil(len(items) / columns)
    font = _font(max(10, thumb_size // 12))
    line_height = _line_height(font)
    cell_w, cell_h = thumb_size + 2 * PAD, thumb_size + PAD * 2 + caption_lines * line_height
    title_h = line_height + PAD if title else 0
    title_w = int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=font)) + 2 * PAD if title else 0
    sheet = Image.new("RGB", (max(columns * cell_w, title_w), title_h + rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((PAD, PAD // 2), title, fill=INK, font=font)
    for n, (image, caption) in enumerate(items):
        x, y = (n % columns) * cell_w + PAD, title_h + (n // columns) * cell_h + PAD
        if image is None:
            draw.rectangle([x, y, x + thumb_size - 1, y + thumb_size - 1], fill=MISSING)
            draw.text((x + PAD, y + PAD), "missing", fill=INK, font=font)
        else:
            scale = thumb_size / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            # enlarge tiny renders (32 px) without blurring them; shrink large ones smoothly
            resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
            thumb = image.convert("RGB").resize(size, resample)
            sheet.paste(thumb, (x + (thumb_size - thumb.width) // 2, y + (thumb_size - thumb.height) // 2))
        for k, line in enumerate(wrap_caption(caption, font, thumb_size, caption_lines)):
            draw.text((x, y + thumb_size + PAD // 2 + k * line_height), line, fill=INK, font=font)
    return sheet


def sample_evenly(count: int, limit: int) -> list[int]:
    """`limit` positions spread evenly over range(count), first and last included (all if count <= limit)."""
    if count <= limit:
        return list(range(count))
    if limit == 1:
        return [0]
    return sorted({round(k * (count - 1) / (limit - 1)) for k in range(limit)})


def dataset_contact_sheet(
    folder: str | Path, *, max_images: int = 16, thumb_size: int = 160, caption_lines: int = 3
) -> Image.Image:
    """The contact sheet of a dataset folder: up to `max_images` thumbnails with '#index text' captions."""
    if max_images < 1:
        raise ValueError(f"max_images={max_images} must be >= 1")
    folder = Path(folder)
    records = read_dataset(folder, check_files=False)  # a missing image shows as a grey tile, not an error
    chosen = [records[k] for k in sample_evenly(len(records), max_images)]
    items = []
    for record in chosen:
        path = folder / record.file_name
        image = None
        if path.is_file():
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        items.append((image, f"#{record.index} {record.text}"))
    title = f"{folder.name}: {len(chosen)} of {len(records)} images"
    return contact_sheet(items, thumb_size=thumb_size, caption_lines=caption_lines, title=title)


def default_sheet_path(folder: str | Path) -> Path:
    """Next to the dataset, not inside it: imagefolder loaders would take a sheet inside for a sample."""
    folder = Path(folder)
    return folder.parent / f"{folder.name}_contact_sheet.png"


def save_sheet(sheet: Image.Image, path: str | Path) -> Path:
    """Write the sheet as PNG, atomically."""
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)
