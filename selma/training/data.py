"""A skill's dataset folder as training tensors, and the deterministic sampler that feeds the loop.

`TrainingData` reads the folder (`dataset_files.read_dataset`), checks every image opens, and hands out
latents and conditioning for a list of example indices — from caches computed once on the backend's
device (the default) or by encoding on the fly.

`StepSampler` decides which examples, noise and timesteps a micro-batch uses as a pure function of
(seed, step, micro-batch, process): a resumed run replays exactly what an uninterrupted one would have
done, with no sampler state to save. Examples are visited epoch by epoch, each epoch a fresh seeded
permutation; every example *position* in that endless sequence has its own noise and timestep, so a
run on W processes with batch b sees exactly what one process with batch W*b sees.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..datasets.files import DatasetRecord, read_dataset
from .backend import DenoiserBackend, concat_conditioning, map_conditioning, select_conditioning
from .buckets import Placement, bucket_sizes, nearest_bucket, place

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


def load_image(path: str | Path, resolution: int) -> torch.Tensor:
    """An image file as a [3, R, R] tensor in [-1, 1]: shorter side resized to R (bicubic), then center-cropped."""
    with Image.open(path) as image:
        return load_placed(image, place(image.size, (resolution, resolution)))


def load_placed(image: Image.Image, placement: Placement) -> torch.Tensor:
    """`image` resized and cropped as `placement` says, as a [3, h, w] tensor in [-1, 1]."""
    image = image.convert("RGB")
    if placement.resized != image.size:
        image = image.resize(placement.resized, Image.Resampling.BICUBIC)
    left, top = placement.crop_left, placement.crop_top
    image = image.crop((left, top, left + placement.bucket[0], top + placement.bucket[1]))
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


class TrainingData:
    """The examples of one dataset folder (or of several: a joint expert), as latents and conditioning."""

    def __init__(
        self,
        folder: str | Path,
        records: Sequence[DatasetRecord],
        resolution: int,
        paths: Sequence[Path] | None = None,
        *,
        aspect_buckets: bool = False,
        bucket_step: int = 64,
    ) -> None:
        self.folder = Path(folder)
        self.records = list(records)
        self.paths = list(paths) if paths is not None else [self.folder / r.file_name for r in self.records]
        self.sources = [self.folder]
        self.resolution = resolution
        self.aspect_buckets, self.bucket_step = aspect_buckets, bucket_step
        self.captions = [r.text for r in self.records]
        self._placements: list[Placement] | None = None
        self._latents: torch.Tensor | list[torch.Tensor] | None = None
        self._conditioning: Any = None
        self._caption_row: torch.Tensor | None = None  # example index -> row of the unique-caption cache

    @classmethod
    def from_folder(cls, folder: str | Path, resolution: int, **buckets: Any) -> TrainingData:
        """Read and check a dataset folder; raise ValueError naming the first unreadable image and the fix.
        `buckets`: aspect_buckets, bucket_step (see __init__)."""
        records = read_dataset(folder)
        data = cls(folder, records, resolution, **buckets)
        for record in records:
            path = data.folder / record.file_name
            try:
                with Image.open(path) as image:
                    image.verify()
            except (UnidentifiedImageError, OSError, SyntaxError) as e:
                raise ValueError(
                    f"dataset {data.folder}: image {record.file_name!r} cannot be read ({e}); re-render it "
                    f"(the renderer fills gaps) or delete its line in metadata.jsonl"
                ) from None
        return data

    @classmethod
    def from_folders(cls, folders: str | Path | Sequence[str | Path], resolution: int, **buckets: Any) -> TrainingData:
        """One folder, or the union of several in the order given (SELMA's baseline: one LoRA on all skills)."""
        if isinstance(folders, str | Path):
            return cls.from_folder(folders, resolution, **buckets)
        parts = [cls.from_folder(f, resolution, **buckets) for f in folders]
        if not parts:
            raise ValueError("no dataset folder given; pass one folder, or a list of folders for a joint expert")
        if len(parts) == 1:
            return parts[0]
        records = [r for part in parts for r in part.records]
        paths = [path for part in parts for path in part.paths]
        data = cls(parts[0].folder, records, resolution, paths, **buckets)
        data.sources = [part.folder for part in parts]
        return data

    def describe(self) -> dict:
        """What the expert file's header says about the data it was trained on."""
        if len(self.sources) == 1:
            return {"path": str(self.folder), "examples": len(self)}
        return {"paths": [str(s) for s in self.sources], "examples": len(self)}

    def __len__(self) -> int:
        return len(self.records)

    @property
    def placements(self) -> list[Placement]:
        """Per example, its training size and crop (see buckets.py): R x R, or its aspect bucket."""
        if self._placements is None:
            square = [(self.resolution, self.resolution)]
            buckets = bucket_sizes(self.resolution, self.bucket_step) if self.aspect_buckets else square
            placements = []
            for path in self.paths:
                with Image.open(path) as image:  # the header only
                    placements.append(place(image.size, nearest_bucket(image.size, buckets)))
            self._placements = placements
        return self._placements

    def groups(self) -> list[list[int]] | None:
        """The example indices of each bucket, for `StepSampler` (None: one size, any batch goes)."""
        if not self.aspect_buckets:
            return None
        groups: dict[tuple[int, int], list[int]] = {}
        for index, placement in enumerate(self.placements):
            groups.setdefault(placement.bucket, []).append(index)
        return [groups[bucket] for bucket in sorted(groups)]

    def time_ids(self, indices: Sequence[int]) -> torch.Tensor:
        """SDXL's micro-conditioning of the examples [B, 6]: original h, w, crop top, left, target h, w."""
        return torch.tensor([self.placements[i].time_ids for i in indices], dtype=torch.float32)

    def pixels(self, indices: Sequence[int]) -> torch.Tensor:
        """Images [B, 3, h, w] in [-1, 1] (CPU, fp32), at their placement (the indices share one bucket)."""
        sizes = {self.placements[i].bucket for i in indices}
        if len(sizes) > 1:
            raise ValueError(f"a batch mixes image sizes {sorted(sizes)}; batches come from one bucket")
        images = []
        for i in indices:
            with Image.open(self.paths[i]) as image:
                images.append(load_placed(image, self.placements[i]))
        return torch.stack(images)

    @torch.no_grad()
    def build_caches(
        self,
        backend: DenoiserBackend,
        *,
        latents: bool,
        text: bool,
        batch_size: int,
        on_progress: ProgressFn | None = None,
        rank: int = 0,
        world_size: int = 1,
        gather: Callable[[list], list] | None = None,
    ) -> None:
        """Encode every image and/or every distinct caption once, kept on the backend's device.

        Under data parallelism (`world_size` > 1, `gather` = accelerate's `gather_object`) each process encodes
        every `world_size`-th chunk and the chunks are exchanged, so the work is done once in all, not once per
        process; the chunks are the ones a single process encodes, so the caches are the same either way."""
        if world_size > 1 and gather is None:
            raise ValueError("build_caches: world_size > 1 needs `gather` (accelerate.utils.gather_object)")
        unique = list(dict.fromkeys(self.captions)) if text else []
        latent_chunks = [
            group[s : s + batch_size]
            for group in (self.groups() or [list(range(len(self)))])
            for s in range(0, len(group), batch_size)
        ]
        text_chunks = [unique[s : s + batch_size] for s in range(0, len(unique), batch_size)]
        jobs = [("latents", chunk) for chunk in latent_chunks] if latents else []
        jobs += [("text", chunk) for chunk in text_chunks]
        mine = range(rank, len(jobs), world_size)
        total, done, encoded = sum(len(jobs[j][1]) for j in mine), 0, {}
        for j in mine:
            kind, chunk = jobs[j]
            if kind == "latents":
                part = backend.encode_images(self.pixels(chunk).to(backend.device)).float()
            else:
                part = map_conditioning(backend.encode_prompts(chunk), torch.Tensor.detach)
            encoded[j] = part if world_size == 1 else map_conditioning(part, torch.Tensor.cpu)
            done += len(chunk)
            if on_progress:
                on_progress(done, total)
        if world_size > 1:  # every process gets every chunk, back on its own device
            encoded = {j: map_conditioning(part, lambda t: t.to(backend.device))
                       for shard in gather([encoded]) for j, part in shard.items()}  # fmt: skip
        parts = [encoded[j] for j in range(len(jobs))]
        if latents:
            chunks = zip(latent_chunks, parts[: len(latent_chunks)], strict=True)
            by_example = {i: latent for chunk, part in chunks for i, latent in zip(chunk, part, strict=True)}
            ordered = [by_example[i] for i in range(len(self))]
            same = len({tuple(t.shape) for t in ordered}) == 1
            self._latents = torch.stack(ordered) if same else ordered  # one tensor, or per example (buckets)
        if text:
            self._conditioning = concat_conditioning(parts[len(jobs) - len(text_chunks) :])
            row = {caption: i for i, caption in enumerate(unique)}
            self._caption_row = torch.tensor([row[c] for c in self.captions], dtype=torch.long)
        log.info(
            "cached %s%s for %d examples (%d distinct captions)%s",
            "latents" if latents else "",
            " + text embeddings" if text else "",
            len(self),
            len(unique),
            f"; this process encoded {len(mine)} of {len(jobs)} chunks" if world_size > 1 else "",
        )

    def latents(self, backend: DenoiserBackend, indices: Sequence[int]) -> torch.Tensor:
        """fp32 latents of the examples at `indices`, on the backend's device."""
        if isinstance(self._latents, list):
            return torch.stack([self._latents[i] for i in indices])
        if self._latents is not None:
            return self._latents[torch.as_tensor(list(indices), device=self._latents.device)]
        with torch.no_grad():
            return backend.encode_images(self.pixels(indices).to(backend.device)).float()

    def conditioning(self, backend: DenoiserBackend, indices: Sequence[int]) -> Any:
        """Conditioning of the examples' captions, batched in the order of `indices`."""
        if self._conditioning is not None:
            return select_conditioning(self._conditioning, self._caption_row[list(indices)])
        with torch.no_grad():
            return backend.encode_prompts([self.captions[i] for i in indices])


def _stream_seed(*parts: object) -> int:
    """A 63-bit seed for one named random stream; stable across processes, platforms and Python runs."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


class StepSampler:
    """Examples, noise and timesteps of every micro-batch, as a pure function of (seed, step, micro, rank)."""

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        grad_accum: int,
        seed: int,
        *,
        world_size: int = 1,
        rank: int = 0,
        groups: list[list[int]] | None = None,
    ) -> None:
        if num_examples < 1:
            raise ValueError("StepSampler needs at least one example")
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.seed = seed
        self.world_size = world_size
        self.rank = rank
        self._permutations: dict[int, list[int]] = {}
        # Aspect buckets: a micro-batch is one bucket's (TrainingData.groups); each epoch shuffles every bucket,
        # cuts it into batches (the last one filled by wrapping round), and shuffles the batches.
        self.groups = groups
        self._batches: dict[int, list[list[int]]] = {}

    def positions(self, step: int, micro: int) -> range:
        """This process's slice of the endless example sequence for one micro-batch (0-based step)."""
        first = ((step * self.grad_accum + micro) * self.world_size + self.rank) * self.batch_size
        return range(first, first + self.batch_size)

    def _permutation(self, epoch: int) -> list[int]:
        if epoch not in self._permutations:
            if len(self._permutations) > 4:  # a batch spans at most a few epochs; keep memory flat
                self._permutations.pop(min(self._permutations))
            generator = torch.Generator().manual_seed(_stream_seed(self.seed, "epoch", epoch))
            self._permutations[epoch] = torch.randperm(self.num_examples, generator=generator).tolist()
        return self._permutations[epoch]

    def indices(self, step: int, micro: int) -> list[int]:
        """The example indices of one micro-batch (examples repeat only if a batch outgrows an epoch)."""
        if self.groups is not None:
            batch = (step * self.grad_accum + micro) * self.world_size + self.rank
            per_epoch = sum(math.ceil(len(group) / self.batch_size) for group in self.groups)
            return list(self._bucket_batches(batch // per_epoch)[batch % per_epoch])
        return [self._permutation(p // self.num_examples)[p % self.num_examples] for p in self.positions(step, micro)]

    def _bucket_batches(self, epoch: int) -> list[list[int]]:
        if epoch not in self._batches:
            if len(self._batches) > 4:
                self._batches.pop(min(self._batches))
            batches = []
            for number, group in enumerate(self.groups):
                generator = torch.Generator().manual_seed(_stream_seed(self.seed, "bucket", epoch, number))
                order = [group[k] for k in torch.randperm(len(group), generator=generator).tolist()]
                for start in range(0, len(order), self.batch_size):
                    batches.append([order[k % len(order)] for k in range(start, start + self.batch_size)])
            generator = torch.Generator().manual_seed(_stream_seed(self.seed, "batches", epoch))
            self._batches[epoch] = [batches[k] for k in torch.randperm(len(batches), generator=generator).tolist()]
        return self._batches[epoch]

    def noise_and_timesteps(
        self, step: int, micro: int, latent_shape: Sequence[int], backend: DenoiserBackend
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise [B, *latent_shape] and timesteps [B] on the backend's device; each example position has
        its own generator, so the draw does not depend on the batch layout or the number of processes."""
        noises, timesteps = [], []
        for position in self.positions(step, micro):
            generator = torch.Generator().manual_seed(_stream_seed(self.seed, "noise", position))
            noises.append(torch.randn(tuple(latent_shape), generator=generator))
            timesteps.append(backend.sample_timesteps(1, generator).reshape(1))
        return torch.stack(noises).to(backend.device), torch.cat([t.to(backend.device) for t in timesteps])
