"""The denoiser backend (diffusers SD eps/v and SDXL), the conditioning helpers and the step sampler."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler
from PIL import Image

from selma.datasets.files import DatasetWriter
from selma.testing.tiny_models import build_tiny_sd, build_tiny_sdxl
from selma.training import (
    DenoiserBackend,
    DiffusersBackend,
    PreviewRenderer,
    StepSampler,
    TrainConfig,
    concat_conditioning,
    select_conditioning,
    train_expert,
)
from selma.training.data import load_image


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: two threads oversubscribe it
    yield
    torch.set_num_threads(threads)


class NoiseOnly:
    """Just enough backend for the sampler: timesteps from the generator it is given."""

    device = torch.device("cpu")

    def sample_timesteps(self, n, generator):
        return torch.randint(0, 1000, (n,), generator=generator)


# ------------------------------------------------------------------ sampler


def test_sampler_draws_depend_only_on_seed_and_step():
    a, b = StepSampler(10, 3, 2, seed=7), StepSampler(10, 3, 2, seed=7)
    b.indices(5, 1)  # touching other steps first changes nothing
    assert a.indices(2, 1) == b.indices(2, 1)
    noise_a, t_a = a.noise_and_timesteps(2, 1, (4, 8, 8), NoiseOnly())
    noise_b, t_b = b.noise_and_timesteps(2, 1, (4, 8, 8), NoiseOnly())
    assert torch.equal(noise_a, noise_b) and torch.equal(t_a, t_b)
    assert not torch.equal(noise_a, a.noise_and_timesteps(3, 1, (4, 8, 8), NoiseOnly())[0])
    other = StepSampler(10, 3, 2, seed=8)
    assert [other.indices(s, 0) for s in range(3)] != [a.indices(s, 0) for s in range(3)]


def test_sampler_visits_every_example_once_per_epoch():
    sampler = StepSampler(6, 2, 1, seed=0)
    epoch = [i for step in range(3) for i in sampler.indices(step, 0)]
    assert sorted(epoch) == list(range(6))
    assert [i for step in range(3, 6) for i in sampler.indices(step, 0)] != epoch  # a fresh permutation


def test_two_processes_with_batch_1_see_what_one_process_with_batch_2_sees():
    whole = StepSampler(5, 2, 2, seed=3)
    ranks = [StepSampler(5, 1, 2, seed=3, world_size=2, rank=r) for r in (0, 1)]
    for step, micro in [(0, 0), (0, 1), (4, 1)]:
        assert whole.indices(step, micro) == ranks[0].indices(step, micro) + ranks[1].indices(step, micro)
        noise, t = whole.noise_and_timesteps(step, micro, (4, 2, 2), NoiseOnly())
        parts = [r.noise_and_timesteps(step, micro, (4, 2, 2), NoiseOnly()) for r in ranks]
        assert torch.equal(noise, torch.cat([p[0] for p in parts])) and torch.equal(
            t, torch.cat([p[1] for p in parts])
        )


# ------------------------------------------------------------------ data and conditioning


def test_images_are_resized_and_center_cropped_to_minus_one_one(tmp_path):
    image = Image.new("RGB", (64, 32), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 16, 32))  # a blue band on the left quarter, cropped away
    image.save(tmp_path / "wide.png")
    pixels = load_image(tmp_path / "wide.png", 16)
    assert pixels.shape == (3, 16, 16)
    assert torch.allclose(pixels[:, 4:12, 4:12], torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1))


def test_conditioning_helpers_select_and_concatenate_nested_trees():
    cond = {"hidden": torch.arange(6).view(3, 2), "extra": (torch.arange(3), "keep")}
    picked = select_conditioning(cond, [2, 0])
    assert picked["hidden"].tolist() == [[4, 5], [0, 1]] and picked["extra"][0].tolist() == [2, 0]
    assert picked["extra"][1] == "keep"
    joined = concat_conditioning([picked, select_conditioning(cond, [1])])
    assert joined["hidden"].tolist() == [[4, 5], [0, 1], [2, 3]]


# ------------------------------------------------------------------ diffusers backend


@pytest.fixture(scope="module")
def sd() -> DiffusersBackend:
    return DiffusersBackend(build_tiny_sd(), device="cpu")


def test_diffusers_backend_implements_the_protocols(sd):
    assert isinstance(sd, DenoiserBackend) and isinstance(sd, PreviewRenderer)
    assert sd.module is sd.unet and sd.fingerprint().startswith("UNet2DConditionModel:")


def test_encoding_is_deterministic_and_scaled(sd):
    pixels = torch.rand(2, 3, 32, 32) * 2 - 1
    latents = sd.encode_images(pixels)
    assert latents.shape == (2, 4, 16, 16) and latents.dtype == torch.float32
    assert torch.equal(latents, sd.encode_images(pixels))
    mean = sd.pipeline.vae.encode(pixels).latent_dist.mean
    torch.testing.assert_close(latents, mean * sd.pipeline.vae.config.scaling_factor)
    assert sd.encode_prompts(["a red image", "two cats"]).shape == (2, 77, 32)


def test_noise_and_target_follow_the_models_schedule(sd):
    latents, noise, t = torch.randn(3, 4, 16, 16), torch.randn(3, 4, 16, 16), torch.tensor([0, 500, 999])
    reference = DDPMScheduler.from_config(sd.pipeline.scheduler.config)
    torch.testing.assert_close(sd.add_noise(latents, noise, t), reference.add_noise(latents, noise, t))
    assert torch.equal(sd.target(latents, noise, t), noise)


def test_v_prediction_models_train_on_the_velocity():
    backend = DiffusersBackend(build_tiny_sd(prediction_type="v_prediction"), device="cpu")
    latents, noise, t = torch.randn(2, 4, 16, 16), torch.randn(2, 4, 16, 16), torch.tensor([10, 900])
    reference = DDPMScheduler.from_config(backend.pipeline.scheduler.config)
    torch.testing.assert_close(backend.target(latents, noise, t), reference.get_velocity(latents, noise, t))


def test_sdxl_gets_pooled_text_and_time_ids_and_trains(tmp_path):
    backend = DiffusersBackend(build_tiny_sdxl(), device="cpu")
    cond = backend.encode_prompts(["a red image", "a blue image"])
    assert cond["encoder_hidden_states"].shape == (2, 77, 64) and cond["text_embeds"].shape == (2, 32)
    noisy, t = torch.randn(2, 4, 16, 16), torch.tensor([10, 900])
    assert backend.predict(noisy, t, cond).shape == (2, 4, 16, 16)
    writer = DatasetWriter(tmp_path / "data")
    for index, rgb in enumerate([(255, 0, 0), (0, 0, 255)]):
        writer.add(Image.new("RGB", (32, 32), rgb), f"colour {index}", index)
    config = TrainConfig(rank=4, alpha=4, resolution=32, batch_size=2, grad_accum=1, steps=1, save_every=0)
    result = train_expert(backend, tmp_path / "data", tmp_path / "experts", config, skill="sdxl")
    assert result.expert_path.is_file()
    # the tiny SDXL UNet has attention on its second level only, two transformer layers per block
    assert all(name.startswith(("down_blocks.1", "mid_block", "up_blocks.0")) for name in result.expert.modules)
