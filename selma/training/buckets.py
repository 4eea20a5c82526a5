"""Where each training image goes: its bucket (the size it is trained at) and its crop, and SDXL's size conditioning.

Without buckets every image is trained at R x R (R = the training resolution): the shorter side resized to R, the
longer one center-cropped. With multi-aspect buckets (kohya's and SDXL's way) an image of another shape is trained
at the bucket closest to its aspect ratio among sizes of about R^2 pixels, multiples of 64, aspect up to 2:1
(SDXL's buckets at R = 1024: 1024x1024, 1152x896, 1216x832, 1344x768, ...), resized to cover it and
center-cropped, so nothing is squashed and little is cut.

SDXL is told each image's original size, where it was cropped and the size it is trained at (its "micro-
conditioning", `time_ids` = original h, w, crop top, left, target h, w — as diffusers' SDXL training script
computes them); `Placement.time_ids` gives them per image instead of one fixed value for the whole dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BUCKET_STEP = 64
MAX_ASPECT = 2.0


@dataclass(frozen=True)
class Placement:
    """How one image of `original` size (w, h) is resized and cropped to its bucket (w, h)."""

    original: tuple[int, int]
    bucket: tuple[int, int]
    resized: tuple[int, int]
    crop_left: int
    crop_top: int

    @property
    def time_ids(self) -> tuple[int, int, int, int, int, int]:
        """SDXL's micro-conditioning: (original h, original w, crop top, crop left, target h, target w)."""
        (width, height), (target_w, target_h) = self.original, self.bucket
        return height, width, self.crop_top, self.crop_left, target_h, target_w


def bucket_sizes(resolution: int, step: int = BUCKET_STEP, max_aspect: float = MAX_ASPECT) -> list[tuple[int, int]]:
    """The (w, h) buckets for `resolution`: multiples of `step`, area at most resolution^2, aspect <= max_aspect."""
    if resolution % step:
        raise ValueError(f"resolution {resolution} is not a multiple of {step}; aspect buckets need one")
    sizes = set()
    for width in range(resolution, int(resolution * math.sqrt(max_aspect)) + 1, step):  # the wide half
        height = resolution * resolution // width // step * step
        if height >= step and width / height <= max_aspect:
            sizes.update({(width, height), (height, width)})
    return sorted(sizes, key=lambda s: (s[0] / s[1], s))


def nearest_bucket(size: tuple[int, int], buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest to the image's (in log ratio); the larger one on a tie."""
    aspect = math.log(size[0] / size[1])
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - aspect), -b[0] * b[1]))


def place(size: tuple[int, int], bucket: tuple[int, int]) -> Placement:
    """Resize an image of `size` to cover `bucket` (aspect kept; the other side truncated as torchvision's Resize,
    which diffusers' training scripts use, computes it), then center-crop to it."""
    width, height = size
    if bucket[0] / width >= bucket[1] / height:  # the width decides; the height follows as torchvision's Resize
        resized = (bucket[0], max(bucket[1], int(bucket[0] * height / width)))
    else:
        resized = (max(bucket[0], int(bucket[1] * width / height)), bucket[1])
    # the offsets as diffusers' SDXL training script rounds them: int(round((resized - target) / 2.0))
    left, top = (int(round((resized[k] - bucket[k]) / 2.0)) for k in (0, 1))
    return Placement(size, bucket, resized, left, top)
