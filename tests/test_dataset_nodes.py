"""The dataset nodes, called as ComfyUI calls them (INPUT_IS_LIST: every input arrives as a list)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from selma.atomic_files import read_jsonl
from selma.datasets.files import read_dataset
from selma.prompts.generation import PromptGenResult


@pytest.fixture
def output(tmp_path, monkeypatch):
    monkeypatch.setenv("SELMA_OUTPUT_DIR", str(tmp_path / "output"))
    return tmp_path / "output"


@pytest.fixture
def nodes(node_package, output):
    return node_package.nodes.datasets


def batch(*levels: float, size: int = 8) -> torch.Tensor:
    """An IMAGE batch [B, H, W, 3]: image b is a flat grey of levels[b] (so a file tells which image it was)."""
    return torch.stack([torch.full((size, size, 3), level) for level in levels])


def grey(folder, record) -> int:
    with Image.open(folder / record.file_name) as image:
        return image.getpixel((0, 0))[0]


def write(nodes, images, prompts, skill="counting", run_name="r1", **optional):
    (dataset,) = nodes.SelmaDatasetWriter().write(images, prompts, [skill], [run_name], **optional)
    return dataset


def digest(folder) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_nodes_are_registered_with_comfyui_flags(node_package):
    mappings = node_package.nodes.NODE_CLASS_MAPPINGS
    writer, loader = mappings["SelmaDatasetWriter"], mappings["SelmaLoadDataset"]
    assert writer.INPUT_IS_LIST is True and writer.OUTPUT_NODE is True and writer.RETURN_TYPES == ("SELMA_DATASET",)
    assert writer.INPUT_TYPES()["required"]["prompts"] == ("STRING", writer.INPUT_TYPES()["required"]["prompts"][1])
    assert writer.INPUT_TYPES()["required"]["prompts"][1]["forceInput"] is True
    assert loader.RETURN_TYPES == ("SELMA_DATASET", "IMAGE")
    assert {"SelmaDatasetWriter", "SelmaLoadDataset"} <= set(node_package.nodes.NODE_DISPLAY_NAME_MAPPINGS)


def test_list_fan_out_one_image_per_prompt(nodes, output):
    prompts = ["one cat", "two dogs", "three birds"]
    dataset = write(nodes, [batch(0.1), batch(0.5), batch(0.9)], prompts)
    folder = output / "selma" / "r1" / "datasets" / "counting"
    assert (dataset.folder, dataset.skill, dataset.count) == (folder, "counting", 3)
    records = read_dataset(folder)
    assert [(r.text, grey(folder, r)) for r in records] == [("one cat", 25), ("two dogs", 127), ("three birds", 229)]


def test_list_fan_out_with_a_batch_per_prompt(nodes, output):
    dataset = write(nodes, [batch(0.1, 0.2, 0.3), batch(0.6, 0.7, 0.8)], ["one cat", "two dogs"])
    records = read_dataset(dataset.folder)
    assert [r.text for r in records] == ["one cat"] * 3 + ["two dogs"] * 3
    assert [grey(dataset.folder, r) for r in records] == [25, 51, 76, 153, 178, 204]


def test_one_batch_with_one_image_per_prompt_pairs_by_position(nodes, output):
    dataset = write(nodes, [batch(0.1, 0.5, 0.9)], ["one cat", "two dogs", "three birds"])
    records = read_dataset(dataset.folder)
    assert [(r.text, grey(dataset.folder, r)) for r in records] == [
        ("one cat", 25),
        ("two dogs", 127),
        ("three birds", 229),
    ]


def test_pixels_are_written_as_comfyui_saveimage_writes_them(nodes, output):
    image = torch.rand(1, 16, 24, 3)
    dataset = write(nodes, [image], ["a noisy picture"])
    expected = np.clip(255.0 * image[0].numpy(), 0, 255).astype(np.uint8)
    with Image.open(dataset.folder / "000000.png") as written:
        np.testing.assert_array_equal(np.asarray(written), expected)


def test_a_second_run_appends_after_the_existing_images(nodes, output):
    write(nodes, [batch(0.1), batch(0.2)], ["one cat", "two dogs"])
    dataset = write(nodes, [batch(0.3)], ["three birds"])
    assert dataset.count == 3
    assert [(r.index, r.text) for r in read_dataset(dataset.folder)][-1] == (2, "three birds")


def test_a_prompt_set_gives_the_skill_and_the_run_folder(nodes, tmp_path):
    run_dir = tmp_path / "elsewhere" / "run"
    prompts = ["a cat above a box"]
    prompt_set = PromptGenResult(path=run_dir / "prompts" / "spatial.jsonl", prompts=prompts, skill="spatial")
    dataset = write(nodes, [batch(0.5)], ["a cat above a box"], skill="ignored", prompt_set=[prompt_set])
    assert dataset.folder == run_dir / "datasets" / "spatial" and dataset.skill == "spatial"
    assert read_jsonl(dataset.folder / "metadata.jsonl")[0]["source"] == "comfyui"


@pytest.mark.parametrize(
    ("images", "prompts", "match"),
    [
        ([batch(0.1), batch(0.2)], ["one", "two", "three"], r"cannot pair 3 prompt\(s\) with 2 image batch\(es\)"),
        ([batch(0.1, 0.2, 0.3)], ["one", "two"], r"cannot pair 2 prompt\(s\) with 1 image batch\(es\) holding 3"),
        ([batch(0.1)], [], r"got 0 prompt\(s\) and 1 image batch\(es\); connect the prompt list"),
    ],
    ids=["3-prompts-2-batches", "2-prompts-1-batch-of-3", "no-prompts"],
)
def test_counts_that_do_not_pair_are_an_error_and_nothing_is_written(nodes, output, images, prompts, match):
    write(nodes, [batch(0.4)], ["already here"])
    folder = output / "selma" / "r1" / "datasets" / "counting"
    before = digest(folder)
    with pytest.raises(ValueError, match=match):
        write(nodes, images, prompts)
    assert digest(folder) == before


def test_the_pairing_error_says_how_to_fix_the_graph(nodes):
    with pytest.raises(ValueError, match=r"Connect the same prompt list that fed CLIP Text Encode .*nothing written"):
        nodes.pair_prompts([1, 1], ["a", "b", "c"])


def test_an_empty_prompt(nodes, output):
    with pytest.raises(ValueError, match=r"prompt 1 is empty; every image needs its prompt text"):
        write(nodes, [batch(0.1), batch(0.2)], ["one cat", "  "])
    assert not (output / "selma").exists()


def test_an_image_of_the_wrong_shape(nodes, output):
    with pytest.raises(ValueError, match=r"images\[1\] has shape \(1, 3, 8, 8\); expected an IMAGE \[batch, height"):
        write(nodes, [batch(0.1), torch.zeros(1, 3, 8, 8)], ["one cat", "two dogs"])
    assert not (output / "selma").exists()


def test_a_bad_skill_or_run_name(nodes, output):
    with pytest.raises(ValueError, match=r"skill='Counting!' is not a valid skill name"):
        write(nodes, [batch(0.1)], ["one cat"], skill="Counting!")
    with pytest.raises(ValueError, match=r"run_name='../x' is not a valid folder name"):
        write(nodes, [batch(0.1)], ["one cat"], run_name="../x")


def test_an_unwritable_output_folder(nodes, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("tests run as root, where chmod does not stop writes; a file does")
    monkeypatch.setenv("SELMA_OUTPUT_DIR", str(tmp_path / "a_file" / "output"))
    with pytest.raises(ValueError, match=r"cannot write to dataset folder .*; choose a writable run directory"):
        write(nodes, [batch(0.1)], ["one cat"])


# --- SelmaLoadDataset --------------------------------------------------------------------------------


def test_load_by_run_and_skill_gives_the_dataset_and_a_contact_sheet(nodes, output):
    write(nodes, [batch(0.1), batch(0.5), batch(0.9)], ["one cat", "two dogs", "three birds"])
    dataset, sheet = nodes.SelmaLoadDataset().load("", "r1", "counting", 2)
    assert dataset.folder == output / "selma" / "r1" / "datasets" / "counting" and dataset.count == 3
    assert sheet.ndim == 4 and sheet.shape[0] == 1 and sheet.shape[3] == 3 and sheet.dtype == torch.float32
    assert 0.0 <= sheet.min() and sheet.max() <= 1.0 and sheet.shape[1] > 100


def test_load_by_path_absolute_or_under_output(nodes, output):
    folder = write(nodes, [batch(0.1)], ["one cat"]).folder
    by_absolute, _ = nodes.SelmaLoadDataset().load(str(folder), "unused", "", 4)
    by_relative, _ = nodes.SelmaLoadDataset().load("selma/r1/datasets/counting", "unused", "", 4)
    assert by_absolute.folder == by_relative.folder == folder and by_absolute.count == 1


def test_load_errors(nodes, output):
    with pytest.raises(ValueError, match=r"give dataset_path, or run_name and skill"):
        nodes.SelmaLoadDataset().load("", "r1", "", 4)
    with pytest.raises(ValueError, match=r"dataset folder .*nothing does not exist; render one with `selma images`"):
        nodes.SelmaLoadDataset().load("", "r1", "nothing", 4)


def test_re_rendering_the_same_prompts_replaces_their_images_instead_of_duplicating(nodes, output):
    write(nodes, [batch(0.1), batch(0.2)], ["one cat", "two dogs"])
    dataset = write(nodes, [batch(0.5), batch(0.6)], ["two dogs", "three birds"])
    records = read_dataset(dataset.folder)
    assert [(r.index, r.text) for r in records] == [(0, "one cat"), (1, "two dogs"), (2, "three birds")]
    assert [grey(dataset.folder, r) for r in records] == [25, 127, 153]  # "two dogs" now shows the new render (0.5)
    assert dataset.count == 3


def test_a_prompt_with_more_images_than_before_keeps_its_slots_and_adds_new_ones(nodes, output):
    write(nodes, [batch(0.1)], ["one cat"])
    dataset = write(nodes, [batch(0.3, 0.4)], ["one cat"])
    assert [(r.index, r.text) for r in read_dataset(dataset.folder)] == [(0, "one cat"), (1, "one cat")]


def test_the_writer_records_the_graphs_sampler_settings(nodes, output):
    """The queued graph (hidden PROMPT) says how the images were sampled: KSampler -> VAE Decode -> the writer."""
    graph = {
        "1": {"class_type": "SelmaLoadShippedModel", "inputs": {"model_name": "shapes", "batch_size": 1}},
        "2": {"class_type": "LoraLoader", "inputs": {"model": ["1", 0], "lora_name": "x.safetensors"}},
        "3": {"class_type": "KSampler", "inputs": {"model": ["2", 0], "seed": 42, "steps": 20, "cfg": 5.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
                                                   "latent_image": ["1", 3]}},
        "4": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["1", 2]}},
        "5": {"class_type": "SelmaDatasetWriter", "inputs": {"images": ["4", 0]}},
    }  # fmt: skip
    dataset = write(
        nodes, [batch(0.1, 0.2), batch(0.5, 0.6)], ["one cat", "two dogs"], prompt=[graph], unique_id=["5"]
    )
    records = read_dataset(dataset.folder)
    assert [(r.seed, r.extra["batch_index"]) for r in records] == [(42, 0), (42, 1), (42, 0), (42, 1)]
    extra = records[0].extra
    assert (extra["steps"], extra["guidance"], extra["sampler"], extra["scheduler"]) == (20, 5.0, "euler", "normal")
    assert (extra["model"], extra["width"], extra["height"]) == ("shapes", 8, 8) and "settings_note" not in extra
    # a seed wired in from another node cannot be known: left out, and said so
    graph["3"]["inputs"]["seed"] = ["9", 0]
    again = write(nodes, [batch(0.3)], ["three birds"], skill="other", prompt=[graph], unique_id=["5"])
    (record,) = read_dataset(again.folder)
    assert record.seed is None and record.extra["settings_note"] == "linked in the graph, not recorded: seed"
