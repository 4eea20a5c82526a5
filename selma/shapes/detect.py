"""Find the objects of the shapes world in a picture: palette segmentation, connected components, shape, size
and box of each (numpy only).

1. Every pixel takes the nearest of the palette colours and the background (`palette_labels`); a pixel farther
   than `MAX_COLOUR_DISTANCE` (RGB, 0..255 per channel) from all of them is ignored, so is the background and
   a blend of the background with a colour (a blurred edge) counts as that colour where it is mostly that colour.
2. Per colour, 8-connected components (label propagation with pointer jumping, `components`); one smaller
   than `MIN_AREA` (a share of the frame, a quarter of the smallest object) is noise, and one filling less than
   `MIN_FILL` of its box is a fringe (the blend of an object's blurred edge with the background can be nearest
   to another palette colour, and rings the object): both are dropped.
3. Shape: the fill of the component's box and of its four corner patches (a fifth of the box's side), against
   templates: a square fills everything, a circle none of the corners (fill about 0.79), an upright triangle
   its two bottom corners (about 0.75 each) and half its box. The nearest template wins.
4. Size: the box's longer side against the midpoint of the two sizes' sides; the box itself gives the relations.

Pictures wider than `WORK_SIDE` are first shrunk (box filter, which also evens out the noise of generated ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..llm.grammars.shapes import HALF_EXTENT
from .world import BACKGROUND, COLOURS

MAX_COLOUR_DISTANCE = 110.0
COVER = 0.5
MIN_AREA = 0.25 * 0.5 * (2 * HALF_EXTENT["small"]) ** 2
MIN_FILL = 0.3  # a triangle fills half its box
WORK_SIDE = 128
SIZE_SPLIT = HALF_EXTENT["small"] + HALF_EXTENT["large"]  # between the two sizes' sides (shares of the frame)
_NAMES = tuple(COLOURS)
_PALETTE = np.array([*COLOURS.values(), BACKGROUND], dtype=np.float32)
# (top-left, top-right, bottom-left, bottom-right corner fill, 0.5 * box fill) of each shape's ideal drawing
_TEMPLATES = {
    "square": (1.0, 1.0, 1.0, 1.0, 0.5),
    "circle": (0.0, 0.0, 0.0, 0.0, 0.39),
    "triangle": (0.0, 0.0, 0.75, 0.75, 0.25),
}


@dataclass(frozen=True)
class Found:
    """One object seen in a picture; `box` is (left, top, right, bottom) as shares of the frame."""

    shape: str
    colour: str
    size: str
    box: tuple[float, float, float, float]
    area: float  # share of the frame


def components(mask: np.ndarray) -> np.ndarray:
    """8-connected component labels of a boolean mask: -1 off the mask, else the smallest flat index of the
    component's pixels."""
    h, w = mask.shape
    off = h * w
    labels = np.where(mask, np.arange(off).reshape(h, w), off)
    padded = np.full((h + 2, w + 2), off)
    while True:
        padded[1:-1, 1:-1] = labels
        smallest = labels
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                smallest = np.minimum(smallest, padded[dy : dy + h, dx : dx + w])
        smallest = np.where(mask, smallest, off)
        flat = np.append(smallest.ravel(), off)
        for _ in range(4):  # pointer jumping: a label takes its label's label
            flat[:-1] = flat[flat[:-1]]
        smallest = flat[:-1].reshape(h, w)
        if np.array_equal(smallest, labels):
            return np.where(mask, labels, -1)
        labels = smallest


def palette_labels(pixels: np.ndarray) -> np.ndarray:
    """Per pixel (H x W x 3 RGB), the index of its palette colour, or -1 (background, or too far from all).

    A pixel takes its nearest palette colour, unless it lies much nearer (half the distance) to the line from the
    background to some other colour: then it is a blend of that colour with the background (a blurred or
    anti-aliased edge: an orange edge fading out lies nearest to yellow), and it belongs to that colour when at
    least COVER of the way from the background, else to the background."""
    distance = np.sqrt(((pixels[:, :, None, :] - _PALETTE) ** 2).sum(axis=-1))
    nearest, own = distance.argmin(axis=-1), distance.min(axis=-1)
    offset, towards = pixels - _PALETTE[-1], _PALETTE[:-1] - _PALETTE[-1]
    share = np.clip(offset @ towards.T / (towards**2).sum(axis=-1), 0.0, 1.0)
    residual = np.sqrt(((offset[:, :, None, :] - share[..., None] * towards) ** 2).sum(axis=-1))
    line = residual.argmin(axis=-1)
    on_line = np.take_along_axis(share, line[..., None], axis=-1)[..., 0]
    blend = (line != nearest) & (residual.min(axis=-1) < 0.5 * own)
    labels = np.where(blend, np.where(on_line >= COVER, line, -1), nearest)
    labels[(~blend & (own > MAX_COLOUR_DISTANCE)) | (labels == len(_NAMES))] = -1
    return labels


def _shape(patch: np.ndarray) -> str:
    """The shape whose template is nearest to the component's corner and box fills (patch: its box, boolean)."""
    h, w = patch.shape
    ch, cw = max(1, round(h / 5)), max(1, round(w / 5))
    corners = [patch[:ch, :cw], patch[:ch, -cw:], patch[-ch:, :cw], patch[-ch:, -cw:]]
    features = np.array([c.mean() for c in corners] + [0.5 * patch.mean()])
    return min(_TEMPLATES, key=lambda s: float(np.abs(features - np.array(_TEMPLATES[s])).sum()))


def find_objects(image) -> list[Found]:
    """Every object of the palette's colours in the picture (a PIL image), left to right."""
    from PIL import Image

    picture = image.convert("RGB")
    if max(picture.size) > WORK_SIDE:
        scale = WORK_SIDE / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.BOX)
    pixels = np.asarray(picture, dtype=np.float32)
    height, width = pixels.shape[:2]
    nearest = palette_labels(pixels)
    found: list[Found] = []
    for k, colour in enumerate(_NAMES):
        mask = nearest == k
        if not mask.any():
            continue
        labels = components(mask)
        ids, areas = np.unique(labels[mask], return_counts=True)
        for label, area in zip(ids, areas, strict=True):
            if area < MIN_AREA * width * height:
                continue
            rows, cols = np.nonzero(labels == label)
            top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            patch = labels[top:bottom, left:right] == label
            if patch.mean() < MIN_FILL:
                continue
            side = max((right - left) / width, (bottom - top) / height)
            box = (left / width, top / height, right / width, bottom / height)
            size = "small" if side < SIZE_SPLIT else "large"
            found.append(Found(_shape(patch), colour, size, box, float(area) / (width * height)))
    return sorted(found, key=lambda f: (f.box[0], f.box[1]))
