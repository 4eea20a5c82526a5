"""The .jpg card shipped beside each workflow: its title and stages as boxes joined by arrows."""

from __future__ import annotations

from pathlib import Path

from .graph import Graph

BACKGROUND, ACCENT, BOX, BOX_EDGE = (28, 31, 38), (233, 140, 52), (52, 60, 78), (110, 160, 230)


def thumbnail(graph: Graph, path: Path) -> None:
    """A small diagram-like card: the title and the stages as boxes joined by arrows."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 512, 288
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    try:
        title_font = ImageFont.truetype("DejaVuSans-Bold.ttf", 26)
        box_font = ImageFont.truetype("DejaVuSans.ttf", 13)
    except OSError:
        title_font = box_font = ImageFont.load_default()
    draw.rectangle([0, 0, width, 6], fill=ACCENT)
    draw.text((24, 22), graph.title, font=title_font, fill=(240, 240, 240))
    draw.text((24, 58), "comfyui-selma workflow", font=box_font, fill=(150, 160, 175))
    stages = graph.stages
    per_row = 4
    box_w, box_h, gap = 100, 44, 20
    for k, stage in enumerate(stages):
        row, col = divmod(k, per_row)
        x = 24 + col * (box_w + gap)
        y = 100 + row * (box_h + 40)
        draw.rounded_rectangle([x, y, x + box_w, y + box_h], radius=8, fill=BOX, outline=BOX_EDGE)
        left, top, right, bottom = draw.textbbox((0, 0), stage, font=box_font)
        draw.text(
            (x + (box_w - (right - left)) / 2, y + (box_h - (bottom - top)) / 2 - top),
            stage,
            font=box_font,
            fill=(235, 235, 235),
        )
        if k + 1 < len(stages):
            if col + 1 < per_row:
                ax, ay = x + box_w + 3, y + box_h // 2
                draw.line([ax, ay, ax + gap - 6, ay], fill=ACCENT, width=2)
                draw.polygon([(ax + gap - 6, ay - 4), (ax + gap - 2, ay), (ax + gap - 6, ay + 4)], fill=ACCENT)
            else:  # wrap: an arrow down to the next row's first box
                ax, ay = x + box_w // 2, y + box_h + 3
                draw.line(
                    [ax, ay, ax, ay + 14, 24 + box_w // 2, ay + 14, 24 + box_w // 2, ay + 34],
                    fill=ACCENT,
                    width=2,
                )
    image.save(path, "JPEG", quality=85, optimize=True)
