"""build_dataset on the tiny SD model (32 px, 2 steps): files vs metadata, seeds, batching, resume, shards, errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from selma.atomic_files import append_jsonl, read_jsonl
from selma.datasets.files import dataset_dir, read_dataset
from selma.datasets.rendering import (
    DatasetConfig,
    build_dataset,
    image_seed,
    pending_indices,
    rerender,
)
from selma.testing.tiny_models import build_tiny_sd

PROMPTS = [
    "one red apple on a table",
    "two dogs on the left of a tree",
    "three blue cups",
    "a cat above a box",
    "a green car next to a house",
    "two birds in the sky",
    "a yellow kite over the beach",
]
TINY = DatasetConfig(batch_size=3, steps=2, width=32, height=32, seed=5)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared CPU OpenMP's spinning threads are 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_sd(sample_size=32)


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(np.int16)


def folder_digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# --- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("batch_size", 0, r"batch_size=0 must be an integer in 1..1024"),
        ("steps", 0, r"steps=0 must be an integer >= 1, or None"),
        ("guidance", -1.0, r"guidance=-1.0 must be in \[0, 100\)"),
        ("width", 30, r"width=30 must be a positive multiple of 8"),
        ("height", 0, r"height=0 must be a positive multiple of 8"),
        ("seed", -1, r"seed=-1 must be an integer in 0..2\*\*63-1"),
        ("negative_prompt", None, r"negative_prompt=None must be a string"),
        ("image_format", "bmp", r"image_format='bmp' is not supported; use one of \['jpg', 'png', 'webp'\]"),
        ("device", "gpu", r"device='gpu' is not a device"),
        ("dtype", "int8", r"dtype='int8' is not supported"),
    ],
)
def test_config_rejects_bad_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        DatasetConfig(**{field: value})


# --- files, metadata, seeds -----------------------------------------------------------------------


def test_files_and_metadata_agree_one_to_one(pipe, tmp_path):
    seen = []
    result = build_dataset("counting", pipe, tmp_path, PROMPTS, TINY, on_progress=lambda d, t: seen.append((d, t)))
    folder = dataset_dir(tmp_path, "counting")
    assert (result.folder, result.count, result.rendered, result.skipped) == (folder, 7, 7, 0) and result.complete
    assert seen == [(0, 7), (3, 7), (6, 7), (7, 7)]
    lines = read_jsonl(folder / "metadata.jsonl")
    images = sorted(p.name for p in folder.iterdir() if p.suffix == ".png")
    assert sorted(line["file_name"] for line in lines) == images == [f"{i:06d}.png" for i in range(7)]
    visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))  # the lock file is hidden
    assert visible == [*images, "metadata.jsonl"] and not list(folder.glob("*.tmp")), "no temp or stray files"
    for line in lines:
        i = line["index"]
        assert line["text"] == PROMPTS[i] and line["seed"] == image_seed(5, "counting", i)
        assert (line["steps"], line["guidance"], line["width"], line["height"]) == (2, 7.5, 32, 32)
        assert line["model"] == "StableDiffusionPipeline" and i in line["batch"] and len(line["batch"]) <= 3
        with Image.open(folder / line["file_name"]) as image:
            assert image.size == (32, 32) and image.mode == "RGB"
    assert len({line["seed"] for line in lines}) == 7
    assert [r.index for r in read_dataset(folder)] == list(range(7))


def test_every_image_rerenders_bit_for_bit_from_its_metadata(pipe, tmp_path):
    result = build_dataset("counting", pipe, tmp_path, PROMPTS[:5], TINY)
    for record in read_dataset(result.folder):
        again = np.asarray(rerender(result.folder, record.index, pipe)).astype(np.int16)
        np.testing.assert_array_equal(again, pixels(result.folder / record.file_name))


def test_seeds_depend_on_run_seed_skill_and_index_only():
    assert image_seed(0, "counting", 3) == image_seed(0, "counting", 3)
    assert len({image_seed(0, "counting", 3), image_seed(1, "counting", 3), image_seed(0, "spatial", 3)}) == 3
    assert all(0 <= image_seed(s, "x", i) < 2**31 for s in (0, 2**62) for i in range(50))


def test_batching_gives_the_same_images_as_one_at_a_time(pipe, tmp_path):
    batched = build_dataset("counting", pipe, tmp_path / "b", PROMPTS, TINY)
    single = build_dataset("counting", pipe, tmp_path / "s", PROMPTS, DatasetConfig(**{**vars(TINY), "batch_size": 1}))
    for a, b in zip(read_dataset(batched.folder), read_dataset(single.folder), strict=True):
        assert (a.text, a.seed) == (b.text, b.seed)
        diff = np.abs(pixels(batched.folder / a.file_name) - pixels(single.folder / b.file_name))
        # Same noise per image; only matmul rounding differs with the batch size (a level here and there).
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01


# --- resume ---------------------------------------------------------------------------------------


class Killed(Exception):
    pass


def test_a_killed_run_resumes_to_exactly_the_full_set(pipe, tmp_path):
    config = DatasetConfig(**{**vars(TINY), "batch_size": 1})
    calls = []

    def die_after_three(done, total):
        calls.append(done)
        if done == 3:
            raise Killed

    with pytest.raises(Killed):
        build_dataset("counting", pipe, tmp_path / "run", PROMPTS, config, on_progress=die_after_three)
    folder = dataset_dir(tmp_path / "run", "counting")
    assert len(read_jsonl(folder / "metadata.jsonl")) == 3
    (folder / "000005.png").write_bytes(b"half an image")  # a crash between an image and its metadata line
    with open(folder / "metadata.jsonl", "ab") as f:
        f.write(b'{"file_name": "000004.png", "text": "two do')  # and a torn last line

    result = build_dataset("counting", pipe, tmp_path / "run", PROMPTS, config)
    assert (result.rendered, result.skipped, result.count) == (4, 3, 7)
    lines = read_jsonl(folder / "metadata.jsonl")
    assert sorted(line["index"] for line in lines) == list(range(7)), "every index exactly once"
    whole = build_dataset("counting", pipe, tmp_path / "whole", PROMPTS, config)
    for line in lines:  # batch size 1: the resumed images equal an uninterrupted run's, bit for bit
        np.testing.assert_array_equal(pixels(folder / line["file_name"]), pixels(whole.folder / line["file_name"]))


def test_a_complete_dataset_is_not_rendered_again_and_the_model_not_loaded(pipe, tmp_path):
    build_dataset("counting", pipe, tmp_path, PROMPTS[:4], TINY)
    before = folder_digest(dataset_dir(tmp_path, "counting"))
    result = build_dataset("counting", "/this/model/is/never/loaded", tmp_path, PROMPTS[:4], TINY)
    assert (result.rendered, result.skipped, result.count) == (0, 4, 4)
    assert folder_digest(dataset_dir(tmp_path, "counting")) == before


def test_prompts_come_from_the_run_directory_by_default(pipe, tmp_path):
    append_jsonl(tmp_path / "prompts" / "spatial.jsonl", [{"text": t, "skill": "spatial"} for t in PROMPTS[:3]])
    result = build_dataset("spatial", pipe, tmp_path, config=TINY)
    assert [r.text for r in read_dataset(result.folder)] == PROMPTS[:3]


# --- several processes ----------------------------------------------------------------------------


def test_two_processes_render_disjoint_shares_into_one_folder(pipe, tmp_path):
    assert pending_indices(tmp_path, "counting", PROMPTS, process_index=1, num_processes=2) == [1, 3, 5]
    first = build_dataset("counting", pipe, tmp_path, PROMPTS, TINY, process_index=0, num_processes=2)
    assert (first.rendered, first.count) == (4, 4)
    assert pending_indices(tmp_path, "counting", PROMPTS, process_index=0, num_processes=2) == []
    second = build_dataset("counting", pipe, tmp_path, PROMPTS, TINY, process_index=1, num_processes=2)
    assert (second.rendered, second.count) == (3, 7)
    lines = read_jsonl(dataset_dir(tmp_path, "counting") / "metadata.jsonl")
    assert sorted(line["index"] for line in lines) == list(range(7))
    assert all(set(line["batch"]) <= ({0, 2, 4, 6} if line["index"] % 2 == 0 else {1, 3, 5}) for line in lines)


def test_a_process_index_outside_the_processes():
    with pytest.raises(ValueError, match=r"process_index=2 must be in 0..1"):
        pending_indices("unused", "counting", PROMPTS, process_index=2, num_processes=2)


# --- bad input: a clear error, nothing lost -------------------------------------------------------


def test_an_empty_prompt_list(pipe, tmp_path):
    with pytest.raises(ValueError, match=r"no prompts to render for skill 'counting': the prompt list is empty"):
        build_dataset("counting", pipe, tmp_path, [], TINY)


def test_a_missing_prompts_file_says_to_generate_prompts(pipe, tmp_path):
    with pytest.raises(ValueError, match=r"prompts/counting.jsonl is missing or empty; run `selma prompts`"):
        build_dataset("counting", pipe, tmp_path, None, TINY)


def test_a_blank_prompt(pipe, tmp_path):
    with pytest.raises(ValueError, match=r"prompt 1 of skill 'counting' is '  '; every prompt must be non-empty"):
        build_dataset("counting", pipe, tmp_path, ["a cat", "  "], TINY)


def test_a_bad_skill_name(pipe, tmp_path):
    with pytest.raises(ValueError, match=r"skill='../escape' is not a valid skill name"):
        build_dataset("../escape", pipe, tmp_path, PROMPTS, TINY)


def test_an_unreadable_model_path(tmp_path):
    with pytest.raises(ValueError, match=r"model path '/no/such/sd15.safetensors' does not exist; pass a diffusers"):
        build_dataset("counting", "/no/such/sd15.safetensors", tmp_path, PROMPTS, TINY)


def test_a_model_that_is_not_a_pipeline(tmp_path):
    with pytest.raises(ValueError, match=r"model=dict is not a diffusers pipeline; pass a pipeline object"):
        build_dataset("counting", {"unet": None}, tmp_path, PROMPTS, TINY)


def test_an_unwritable_folder(pipe, tmp_path):
    (tmp_path / "a_file").write_text("tests run as root, where chmod does not stop writes; a file does")
    with pytest.raises(ValueError, match=r"cannot write to dataset folder .*a_file/run/datasets/counting"):
        build_dataset("counting", pipe, tmp_path / "a_file" / "run", PROMPTS, TINY)


def test_other_prompts_in_an_existing_dataset_are_an_error_and_nothing_is_lost(pipe, tmp_path):
    build_dataset("counting", pipe, tmp_path, PROMPTS[:3], TINY)
    before = folder_digest(dataset_dir(tmp_path, "counting"))
    changed = [PROMPTS[0], "a different second prompt", PROMPTS[2]]
    with pytest.raises(ValueError, match=r"rendered from other prompts: image 1 shows 'two dogs.*delete .* to start"):
        build_dataset("counting", pipe, tmp_path, changed, TINY)
    assert folder_digest(dataset_dir(tmp_path, "counting")) == before


def test_rerender_needs_the_render_settings(pipe, tmp_path):
    from selma.datasets.files import DatasetWriter

    DatasetWriter(tmp_path).add(Image.new("RGB", (8, 8)), "a cat from ComfyUI", 0, None, source="comfyui")
    with pytest.raises(ValueError, match=r"record 0 of .* has no seed or render settings \(written by the ComfyUI"):
        rerender(tmp_path, 0, pipe)
    with pytest.raises(ValueError, match=r"has no record with index 4; its 1 records have indices 0..0"):
        rerender(tmp_path, 4, pipe)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # diffusers vs numpy 2
def test_an_sdxl_pipeline_with_its_own_defaults(tmp_path):
    from selma.testing.tiny_models import build_tiny_sdxl

    config = DatasetConfig(batch_size=2, steps=2, width=32, height=32)  # guidance None: the pipeline's default
    result = build_dataset("counting", build_tiny_sdxl(sample_size=32), tmp_path, PROMPTS[:3], config)
    records = read_dataset(result.folder)
    assert [r.text for r in records] == PROMPTS[:3]
    assert {(r.extra["guidance"], r.extra["model"]) for r in records} == {(5.0, "StableDiffusionXLPipeline")}
