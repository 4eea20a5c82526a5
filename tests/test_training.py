"""The expert trainer on the tiny SD pipeline (32 px, rank 4): learning, resume, cancel, files, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from selma.datasets.files import DatasetWriter
from selma.experts.lora_files import apply_lora_expert, load_lora_expert
from selma.testing.tiny_models import build_tiny_sd
from selma.training import (
    CheckpointMismatch,
    DiffusersBackend,
    NonFiniteLoss,
    StepSampler,
    TrainConfig,
    TrainingBusy,
    TrainingData,
    TrainingOutOfMemory,
    train_expert,
)
from selma.training.adapter import remove_adapter

COLOURS = {"red": (230, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 220), "yellow": (240, 230, 30)}


def config(**overrides) -> TrainConfig:
    base = {
        "rank": 4,
        "alpha": 4,
        "resolution": 32,
        "batch_size": 2,
        "grad_accum": 1,
        "steps": 3,
        "save_every": 0,
        "learning_rate": 1e-3,
    }
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these models are tiny, and on a shared 2-core machine two threads oversubscribe
    the cores and run ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backend() -> DiffusersBackend:
    return DiffusersBackend(build_tiny_sd(), device="cpu")


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    """Four solid-colour images whose captions name the colour: learnable in a few steps."""
    folder = tmp_path_factory.mktemp("data") / "colours"
    writer = DatasetWriter(folder)
    for index, (name, rgb) in enumerate(COLOURS.items()):
        writer.add(Image.new("RGB", (32, 32), rgb), f"a {name} image", index)
    return folder


@pytest.fixture(scope="module")
def straight(backend, colours, tmp_path_factory):
    """6 uninterrupted steps (grad_accum 2, warmup 2, previews every 3): the reference for resume tests."""
    calls = []
    out = tmp_path_factory.mktemp("straight")
    cfg = config(steps=6, grad_accum=2, lr_warmup_steps=2, preview_every=3, preview_inference_steps=2)
    result = train_expert(backend, colours, out, cfg, skill="colours", on_step=lambda *a: calls.append(a))
    return result, calls, cfg


def max_difference(a, b) -> float:
    assert a.modules.keys() == b.modules.keys()
    return max(
        max(
            (a.modules[k].down - b.modules[k].down).abs().max().item(), (a.modules[k].up - b.modules[k].up).abs().max()
        )
        for k in a.modules
    )


def held_out_loss(backend, folder: Path) -> float:
    """Mean loss over fixed examples, noise and timesteps no training step uses (another seed)."""
    data, sampler = TrainingData.from_folder(folder, 32), StepSampler(4, 4, 1, seed=999)
    total = 0.0
    with torch.no_grad():
        for step in range(8):
            indices = sampler.indices(step, 0)
            latents = data.latents(backend, indices)
            noise, t = sampler.noise_and_timesteps(step, 0, latents.shape[1:], backend)
            prediction = backend.predict(backend.add_noise(latents, noise, t), t, data.conditioning(backend, indices))
            total += torch.nn.functional.mse_loss(prediction, backend.target(latents, noise, t)).item()
    return total / 8


# ------------------------------------------------------------------ learning and files


def test_loss_falls_on_a_learnable_dataset(backend, colours, tmp_path):
    before = held_out_loss(backend, colours)
    result = train_expert(
        backend, colours, tmp_path, config(steps=12, batch_size=4, learning_rate=1e-2), skill="colours"
    )
    apply_lora_expert(backend.unet, result.expert, adapter_name="check")
    try:
        after = held_out_loss(backend, colours)
    finally:
        remove_adapter(backend.unet, "check")
    assert after < 0.9 * before, (before, after)


def test_on_step_gets_step_total_and_loss(straight):
    result, calls, cfg = straight
    assert [c[:2] for c in calls] == [(s, 6) for s in range(1, 7)]
    assert all(isinstance(c[2], float) and c[2] > 0 for c in calls)
    records = [json.loads(line) for line in result.log_path.read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 7))
    assert [r["loss"] for r in records] == [c[2] for c in calls]
    assert [r["lr"] for r in records[:3]] == pytest.approx([cfg.learning_rate / 3, cfg.learning_rate * 2 / 3, 1e-3])


def test_run_writes_expert_checkpoint_curve_and_previews(straight):
    result, _, _ = straight
    assert result.expert_path == result.work_dir.parent / "colours.safetensors" and result.expert_path.is_file()
    assert (result.steps, result.total_steps, result.resumed_from) == (6, 6, 0)
    state = json.loads((result.work_dir / "checkpoint" / "state.json").read_text())
    assert (state["step"], state["finished"], state["world_size"]) == (6, True, 1)
    assert Image.open(result.loss_curve_path).format == "PNG"
    assert [p.name for p in result.preview_paths] == [f"step{s:06d}_{i}.png" for s in (0, 3, 6) for i in (0, 1)]
    assert Image.open(result.preview_paths[0]).size == (32, 32)


def test_saved_expert_loads_back_equal_to_the_trained_adapter(straight):
    result, _, cfg = straight
    loaded = load_lora_expert(result.expert_path)
    assert max_difference(loaded, result.expert) == 0
    assert len(loaded.modules) == 48 and {m.rank for m in loaded.modules.values()} == {4}
    assert loaded.metadata["skill"] == "colours" and loaded.metadata["steps"] == 6
    assert TrainConfig.from_json(loaded.metadata["config"]) == cfg
    # the checkpoint's adapter tensors are the same numbers as the expert's factors
    from safetensors.torch import load_file

    tensors = load_file(result.work_dir / "checkpoint" / "adapter.safetensors")
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    assert torch.equal(tensors[f"{name}.lora_A.selma.weight"], loaded.modules[name].down)


def test_the_module_is_left_as_it_was(backend, colours, tmp_path):
    from peft.tuners.tuners_utils import BaseTunerLayer

    backend.unet.requires_grad_(True)
    backend.unet.conv_in.requires_grad_(False)
    x, t, c = torch.randn(1, 4, 16, 16), torch.tensor([500]), torch.randn(1, 77, 32)
    with torch.no_grad():
        before = backend.unet(x, t, c).sample
    train_expert(backend, colours, tmp_path, config(steps=1, learning_rate=1e-2), skill="colours")
    assert not any(isinstance(m, BaseTunerLayer) for m in backend.unet.modules())
    assert not hasattr(backend.unet, "peft_config")
    assert [n for n, p in backend.unet.named_parameters() if not p.requires_grad] == ["conv_in.weight", "conv_in.bias"]
    with torch.no_grad():
        assert torch.equal(backend.unet(x, t, c).sample, before)


def test_a_finished_run_returns_at_once(backend, colours, straight):
    result, calls, cfg = straight
    again = train_expert(
        backend, colours, result.work_dir.parent, cfg, skill="colours", on_step=lambda *a: calls.append(a)
    )
    assert again.steps == 6 and len(calls) == 6  # no step ran
    assert max_difference(again.expert, result.expert) == 0


# ------------------------------------------------------------------ resume and cancel


def test_resume_equals_uninterrupted(backend, colours, straight, tmp_path):
    reference, _, cfg = straight
    first = train_expert(backend, colours, tmp_path, config(**{**cfg.to_json(), "steps": 3}), skill="colours")
    assert first.steps == 3
    resumed = train_expert(backend, colours, tmp_path, cfg, skill="colours")
    assert resumed.resumed_from == 3 and resumed.steps == 6
    assert max_difference(resumed.expert, reference.expert) <= 1e-6


def test_cancel_in_on_step_keeps_a_checkpoint_and_a_rerun_resumes(backend, colours, straight, tmp_path):
    reference, _, cfg = straight

    class Cancelled(Exception):
        pass

    def cancel_at_4(step, total, loss):
        if step == 4:
            raise Cancelled

    with pytest.raises(Cancelled):
        train_expert(backend, colours, tmp_path, cfg, skill="colours", on_step=cancel_at_4)
    state = json.loads((tmp_path / "colours" / "checkpoint" / "state.json").read_text())
    assert (state["step"], state["finished"]) == (4, False)
    assert not (tmp_path / "colours.safetensors").exists()
    resumed = train_expert(backend, colours, tmp_path, cfg, skill="colours")
    assert resumed.resumed_from == 4
    assert max_difference(resumed.expert, reference.expert) <= 1e-6
    steps = [json.loads(line)["step"] for line in (tmp_path / "colours" / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # replayed steps are not logged twice


def test_resume_with_other_settings_is_refused_and_nothing_is_lost(backend, colours, straight):
    result, _, cfg = straight
    before = (result.work_dir / "checkpoint" / "adapter.safetensors").read_bytes()
    with pytest.raises(CheckpointMismatch, match=r"trained with rank=4 \(now 8\).*resume=False \(--no-resume\)"):
        train_expert(backend, colours, result.work_dir.parent, config(**{**cfg.to_json(), "rank": 8}), skill="colours")
    assert (result.work_dir / "checkpoint" / "adapter.safetensors").read_bytes() == before


def test_a_second_process_on_the_same_skill_is_refused(backend, colours, tmp_path, lock_holder):
    child = lock_holder(tmp_path / "colours", "train")
    try:
        with pytest.raises(TrainingBusy, match=rf"training 'colours' into .*: process {child.pid} on .* is already"):
            train_expert(backend, colours, tmp_path, config(), skill="colours")
    finally:
        child.kill()


# ------------------------------------------------------------------ failures


class FaultyBackend:
    """The tiny backend, except that from the `fail_at`-th prediction on it returns NaN or raises `error`."""

    def __init__(self, inner: DiffusersBackend, fail_at: int, error: BaseException | None = None) -> None:
        self.inner, self.fail_at, self.error, self.calls = inner, fail_at, error, 0
        self.module, self.device = inner.module, inner.device

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict(self, noisy, timesteps, conditioning):
        self.calls += 1
        prediction = self.inner.predict(noisy, timesteps, conditioning)
        if self.calls < self.fail_at:
            return prediction
        if self.error is not None:
            raise self.error
        return prediction * float("nan")


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(backend, colours, tmp_path):
    faulty = FaultyBackend(backend, fail_at=5)
    with pytest.raises(NonFiniteLoss, match=r"loss became nan at step 5 of 8.*checkpoint \(step 4\).*Lower the learn"):
        train_expert(faulty, colours, tmp_path, config(steps=8, save_every=2), skill="colours")
    state = json.loads((tmp_path / "colours" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 4
    from safetensors.torch import load_file

    assert all(
        torch.isfinite(t).all()
        for t in load_file(tmp_path / "colours" / "checkpoint" / "adapter.safetensors").values()
    )
    assert not (tmp_path / "colours.safetensors").exists()


def test_a_huge_learning_rate_is_caught_before_nan_weights_are_saved(backend, colours, tmp_path):
    with pytest.raises(NonFiniteLoss, match=r"at step \d+ of 6.*try 1e\+29"):
        train_expert(backend, colours, tmp_path, config(steps=6, save_every=1, learning_rate=1e30), skill="colours")
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "colours" / "checkpoint" / "adapter.safetensors")
    assert all(torch.isfinite(t).all() for t in saved.values())


def test_out_of_memory_suggests_smaller_batches_and_checkpointing(backend, colours, tmp_path):
    faulty = FaultyBackend(
        backend, fail_at=1, error=torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
    )
    with pytest.raises(TrainingOutOfMemory, match=r"batch_size=1, grad_accum=2\), turn on gradient checkpointing"):
        train_expert(faulty, colours, tmp_path, config(), skill="colours")


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("no_folder", r"does not exist; render one"),
        ("no_metadata", r"has no metadata.jsonl"),
        ("no_records", r"is empty: metadata.jsonl has no records"),
        ("missing_image", r"1 image\(s\) named in metadata.jsonl are missing, first '000001.png'"),
        ("broken_image", r"image '000002.png' cannot be read .*re-render it"),
    ],
)
def test_a_bad_dataset_is_refused_before_anything_is_written(backend, colours, tmp_path, damage, match):
    import shutil

    folder = tmp_path / "data"
    if damage != "no_folder":
        shutil.copytree(colours, folder)
    if damage == "no_metadata":
        (folder / "metadata.jsonl").unlink()
    elif damage == "no_records":
        (folder / "metadata.jsonl").write_text("")
    elif damage == "missing_image":
        (folder / "000001.png").unlink()
    elif damage == "broken_image":
        (folder / "000002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match=match):
        train_expert(backend, folder, tmp_path / "experts", config(), skill="colours")
    assert not (tmp_path / "experts").exists()


def test_unknown_target_modules_list_the_layers_that_exist(backend, colours, tmp_path):
    listed = r"\['to_x'\] match no module of UNet2DConditionModel; .* end with \[.*'proj_in', 'to_q', 'to_k'"
    with pytest.raises(ValueError, match=listed):
        train_expert(backend, colours, tmp_path, config(target_modules=("to_q", "to_x")), skill="colours")
    assert not any(tmp_path.iterdir())


def test_a_target_that_is_not_a_layer_is_refused(backend, colours, tmp_path):
    with pytest.raises(ValueError, match=r"select '.*attn1', a Attention; LoRA adapts Linear and Conv2d layers only"):
        train_expert(backend, colours, tmp_path, config(target_modules=("attn1",)), skill="colours")


def test_a_skill_name_that_is_not_a_file_name_is_refused(backend, colours, tmp_path):
    with pytest.raises(ValueError, match=r"skill='../x' is not a valid name"):
        train_expert(backend, colours, tmp_path, config(), skill="../x")


def test_batch_larger_than_the_dataset_repeats_examples(backend, colours, tmp_path, caplog):
    result = train_expert(backend, colours, tmp_path, config(steps=1, batch_size=6), skill="colours")
    assert result.steps == 1
    assert "batch_size=6 is larger than the 4 examples" in caplog.text


# ------------------------------------------------------------------ equivalences


def first_loss(result) -> float:
    return json.loads(result.log_path.read_text().splitlines()[0])["loss"]


def test_cached_and_uncached_training_give_the_same_first_loss(backend, colours, tmp_path):
    cached = train_expert(backend, colours, tmp_path / "a", config(steps=1), skill="colours")
    uncached = train_expert(
        backend, colours, tmp_path / "b", config(steps=1, cache_latents=False, cache_text=False), skill="colours"
    )
    assert first_loss(uncached) == pytest.approx(first_loss(cached), rel=1e-5)
    assert max_difference(cached.expert, uncached.expert) <= 1e-5


def test_gradient_checkpointing_changes_memory_not_results(backend, colours, tmp_path):
    plain = train_expert(backend, colours, tmp_path / "a", config(steps=1), skill="colours")
    try:
        checkpointed = train_expert(
            backend, colours, tmp_path / "b", config(steps=1, gradient_checkpointing=True), skill="colours"
        )
        assert backend.unet.is_gradient_checkpointing
    finally:
        backend.unet.disable_gradient_checkpointing()
    assert first_loss(checkpointed) == pytest.approx(first_loss(plain), rel=1e-6)
    assert max_difference(plain.expert, checkpointed.expert) <= 1e-6


def test_bf16_autocast_trains_fp32_adapters_after_an_fp32_run(backend, colours, tmp_path):
    # Accelerate keeps one precision per process; a host that trains twice with different settings must work.
    result = train_expert(backend, colours, tmp_path, config(steps=1, mixed_precision="bf16"), skill="colours")
    assert all(m.down.dtype == torch.float32 for m in result.expert.modules.values())
    assert json.loads(result.log_path.read_text())["loss"] > 0


def test_a_backend_can_hand_back_the_expert_itself(backend, colours, tmp_path):
    from selma.experts.lora_files import lora_expert_from_peft

    class Exporting(FaultyBackend):
        def export_expert(self, adapter_name):
            expert = lora_expert_from_peft(self.module, adapter_name)
            self.exported = {name: m.rank for name, m in expert.modules.items()}
            return expert

    exporting = Exporting(backend, fail_at=10**9)
    result = train_expert(exporting, colours, tmp_path, config(steps=1), skill="colours")
    assert exporting.exported == {name: 4 for name in result.expert.modules}
    assert load_lora_expert(result.expert_path).modules.keys() == result.expert.modules.keys()


def test_a_joint_expert_trains_on_the_union_of_several_datasets(backend, colours, tmp_path):
    other = tmp_path / "shapes"
    writer = DatasetWriter(other)
    for index, rgb in enumerate([(250, 250, 250), (5, 5, 5)]):
        writer.add(Image.new("RGB", (32, 32), rgb), f"shape {index}", index)
    data = TrainingData.from_folders([colours, other], 32)
    assert len(data) == len(COLOURS) + 2 and data.sources == [colours, other]
    assert data.captions[-2:] == ["shape 0", "shape 1"] and data.paths[-1] == other / data.records[-1].file_name
    assert data.pixels([len(data) - 1]).max().item() < -0.9, "the last example is the black image of `shapes`"
    result = train_expert(backend, [colours, other], tmp_path / "out", config(steps=2), skill="joint")
    header = load_lora_expert(result.expert_path).metadata["dataset"]
    assert header == {"paths": [str(colours), str(other)], "examples": len(COLOURS) + 2}
    with pytest.raises(ValueError, match="no dataset folder given"):
        TrainingData.from_folders([], 32)
