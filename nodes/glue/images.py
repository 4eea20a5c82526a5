"""Pictures between ComfyUI and the core: IMAGE tensors [B, H, W, C] floats in 0..1 <-> PIL images."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tensors_to_pil(batches) -> list[list]:
    """IMAGE tensors [B,H,W,C] (or [H,W,C]) floats in 0..1 -> PIL images per batch, converted as ComfyUI's
    SaveImage does (so the dataset holds the pixels SaveImage would have written)."""
    import numpy as np
    from PIL import Image

    images = []
    for n, batch in enumerate(batches):
        array = batch.detach().cpu().float().numpy() if hasattr(batch, "detach") else np.asarray(batch, "float32")
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] not in (1, 3, 4) or 0 in array.shape:
            raise ValueError(
                f"images[{n}] has shape {tuple(array.shape)}; expected an IMAGE [batch, height, width, 3] "
                "(connect a VAE Decode output)"
            )
        pixels = np.clip(255.0 * array, 0, 255).astype(np.uint8)
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[-1]]
        images.append([Image.fromarray(p[..., 0] if mode == "L" else p, mode) for p in pixels])
    return images


def pil_to_tensor(images: list) -> Any:
    """PIL images of one size as a ComfyUI IMAGE batch [B, H, W, 3] in 0..1."""
    import numpy as np
    import torch

    return torch.from_numpy(np.stack([np.asarray(i.convert("RGB"), dtype=np.float32) / 255.0 for i in images]))


def image_to_tensor(path: str | Path):
    """A PNG on disk as a ComfyUI IMAGE: float tensor [1, H, W, 3] in 0..1."""
    import numpy as np
    import torch
    from PIL import Image

    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array)[None]
