"""Aspect buckets and SDXL's per-image size conditioning (training/buckets.py, TrainingData, StepSampler): where each
image goes, which batches the sampler makes, and that SDXL training sees each image's own time_ids."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from selma.datasets.files import DatasetWriter
from selma.testing.tiny_models import build_tiny_sdxl
from selma.training import DiffusersBackend, StepSampler, TrainConfig, TrainingData, train_expert
from selma.training.buckets import bucket_sizes, nearest_bucket, place

SIZES = [(96, 64), (96, 64), (64, 64), (64, 96), (128, 64), (64, 64), (100, 60)]  # (w, h)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def mixed(tmp_path):
    folder = tmp_path / "mixed"
    writer = DatasetWriter(folder)
    for index, size in enumerate(SIZES):
        writer.add(Image.new("RGB", size, (40 * index, 100, 200)), f"a picture number {index}", index)
    return folder


def test_the_1024_buckets_are_sdxls():
    buckets = bucket_sizes(1024)
    for size in [(1024, 1024), (1152, 896), (896, 1152), (1216, 832), (1344, 768), (768, 1344), (1408, 704)]:
        assert size in buckets
    assert all(w % 64 == 0 and h % 64 == 0 and w * h <= 1024**2 and max(w / h, h / w) <= 2 for w, h in buckets)
    assert nearest_bucket((1920, 1080), buckets) == (1344, 768)
    assert nearest_bucket((1000, 1000), buckets) == (1024, 1024)
    with pytest.raises(ValueError, match="not a multiple of 64"):
        bucket_sizes(500)


def test_a_placement_gives_diffusers_sdxl_time_ids():
    """train_text_to_image_sdxl.py: original (h, w); shorter side resized to R; crop (top, left) rounded."""
    placement = place((600, 400), (512, 512))
    assert placement.resized == (768, 512)
    assert placement.time_ids == (400, 600, 0, 128, 512, 512)
    wide = place((1920, 1080), (1344, 768))
    assert wide.resized == (1365, 768) and wide.time_ids == (1080, 1920, 0, 10, 768, 1344)


def test_without_buckets_images_are_square_but_time_ids_are_each_images(mixed):
    data = TrainingData.from_folder(mixed, 64)
    assert data.groups() is None
    assert data.pixels(range(len(SIZES))).shape == (len(SIZES), 3, 64, 64)
    ids = data.time_ids([0, 3, 6])
    assert ids.tolist() == [[64, 96, 0, 16, 64, 64], [96, 64, 16, 0, 64, 64], [60, 100, 0, 21, 64, 64]]


def test_with_buckets_each_image_keeps_its_aspect(mixed):
    assert TrainingData.from_folder(mixed, 64, aspect_buckets=True).groups() == [list(range(len(SIZES)))]  # 64 px
    data = TrainingData.from_folder(mixed, 64, aspect_buckets=True, bucket_step=16)  # 48x80, 64x64, 80x48
    assert [data.placements[i].bucket for i in range(len(SIZES))] == [
        (80, 48), (80, 48), (64, 64), (48, 80), (80, 48), (64, 64), (80, 48),
    ]  # fmt: skip
    assert data.groups() == [[3], [2, 5], [0, 1, 4, 6]]
    for group in data.groups():
        assert data.pixels(group).shape[-2:] == data.placements[group[0]].bucket[::-1]
    assert data.time_ids([4]).tolist() == [[64, 128, 0, 8, 48, 80]]  # 128x64 -> 96x48, 8 px off each side
    with pytest.raises(ValueError, match="a batch mixes image sizes"):
        data.pixels([0, 2])


def test_bucket_batches_stay_in_one_bucket_cover_every_example_and_replay(mixed):
    data = TrainingData.from_folder(mixed, 64, aspect_buckets=True, bucket_step=16)
    sampler = StepSampler(len(data), 2, 1, seed=3, groups=data.groups())
    per_epoch = sum(-(-len(g) // 2) for g in data.groups())
    batches = [sampler.indices(step, 0) for step in range(per_epoch)]
    assert all(len({data.placements[i].bucket for i in batch}) == 1 and len(batch) == 2 for batch in batches)
    assert {i for batch in batches for i in batch} == set(range(len(SIZES)))
    again = StepSampler(len(data), 2, 1, seed=3, groups=data.groups())
    assert [again.indices(step, 0) for step in range(per_epoch)] == batches
    other_epoch = [sampler.indices(step, 0) for step in range(per_epoch, 2 * per_epoch)]
    assert other_epoch != batches


def test_sdxl_training_sees_each_images_time_ids_and_buckets_resume_exactly(mixed, tmp_path):
    backend = DiffusersBackend(build_tiny_sdxl(), device="cpu")
    seen = []
    predict = backend.predict

    def recording(noisy, timesteps, conditioning):
        seen.append((tuple(noisy.shape[-2:]), conditioning["time_ids"].tolist()))
        return predict(noisy, timesteps, conditioning)

    backend.predict = recording
    config = TrainConfig(
        rank=4,
        alpha=4,
        resolution=64,
        aspect_buckets=True,
        bucket_step=16,
        batch_size=2,
        grad_accum=1,
        steps=4,
        save_every=0,
    )
    full = train_expert(backend, mixed, tmp_path / "full", config, skill="mixed")
    data = TrainingData.from_folder(mixed, 64, aspect_buckets=True, bucket_step=16)
    by_ids = {data.placements[i].time_ids: data.placements[i] for i in range(len(SIZES))}
    for latent_size, ids in seen:
        for row in ids:
            placement = by_ids[tuple(int(v) for v in row)]  # each row is one image's own
            assert latent_size == (placement.bucket[1] // 2, placement.bucket[0] // 2)  # the tiny VAE is 2x
    assert len({latent for latent, _ in seen}) > 1, "the batches came from more than one bucket"

    backend.predict = predict
    first = train_expert(
        backend, mixed, tmp_path / "resumed", TrainConfig(**{**config.to_json(), "steps": 2}), skill="mixed"
    )
    assert first.steps == 2
    resumed = train_expert(backend, mixed, tmp_path / "resumed", config, skill="mixed")
    assert resumed.resumed_from == 2
    for name, module in full.expert.modules.items():
        assert torch.allclose(resumed.expert.modules[name].delta(), module.delta(), atol=1e-6), name


def test_bucket_settings_are_checked_and_reach_the_cli():
    import argparse

    from selma.cli.train import add_arguments, config_from_args

    with pytest.raises(ValueError, match="bucket_step=12 must be a multiple of 8"):
        TrainConfig(bucket_step=12)
    with pytest.raises(ValueError, match="resolution=520 is not a multiple of bucket_step=64"):
        TrainConfig(resolution=520, aspect_buckets=True)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--run-dir", "r", "--model", "m", "--skill", "s", "--aspect-buckets", "--bucket-step", "32"]
    )
    config = config_from_args(args)
    assert (config.aspect_buckets, config.bucket_step) == (True, 32)


@pytest.mark.comfyui
def test_in_comfyui_sdxl_gets_each_images_size_embedding_in_diffusers_order(comfy, node_package):
    """ComfyBackend builds SDXL's added conditioning per image with ComfyUI's own SDXL.encode_adm; the order of the
    six numbers must be diffusers' time_ids order (original h, w, crop top, left, target h, w)."""
    import types

    import comfy.model_base
    from comfy.ldm.modules.diffusionmodules.openaimodel import Timestep
    from comfyui_selma.nodes.glue.training_backend import ComfyBackend

    fake = types.SimpleNamespace(embedder=Timestep(256), noise_augmentor=None)
    backend = ComfyBackend.__new__(ComfyBackend)  # only _sdxl_adm's parts: the model's encode_adm and a device
    backend.base_model = types.SimpleNamespace(encode_adm=lambda **kw: comfy.model_base.SDXL.encode_adm(fake, **kw))
    backend.device = torch.device("cpu")
    pooled = torch.randn(2, 1280)
    time_ids = torch.tensor([[400.0, 600.0, 0.0, 128.0, 512.0, 512.0], [1080.0, 1920.0, 0.0, 10.0, 768.0, 1344.0]])
    adm = backend._sdxl_adm(pooled, time_ids)
    for k in range(2):
        numbers = [fake.embedder(torch.tensor([value])) for value in time_ids[k].tolist()]
        assert torch.allclose(adm[k], torch.cat([pooled[k], *[n.flatten() for n in numbers]]), atol=1e-6)
