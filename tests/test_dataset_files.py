"""The dataset folder format (selma/dataset_files.py): reading errors, torn lines, and two writing processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from selma.atomic_files import read_jsonl
from selma.datasets.files import DatasetRecord, DatasetWriter, dataset_dir, read_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]


def solid(value: int) -> Image.Image:
    return Image.new("RGB", (8, 8), (value, 255 - value, 7))


def write(folder, count: int) -> DatasetWriter:
    writer = DatasetWriter(folder)
    for i in range(count):
        writer.add(solid(i), f"prompt {i}", i, seed=100 + i, model="m")
    return writer


def test_round_trip_keeps_every_field(tmp_path):
    write(tmp_path, 3)
    records = read_dataset(tmp_path)
    assert records[1] == DatasetRecord("000001.png", "prompt 1", 1, 101, {"model": "m"})
    with Image.open(tmp_path / "000002.png") as image:
        assert image.getpixel((0, 0)) == (2, 253, 7)
    assert dataset_dir("runs/r1", "counting") == Path("runs/r1/datasets/counting")


def test_existing_and_next_index_skip_records_whose_image_is_gone(tmp_path):
    writer = write(tmp_path, 4)
    (tmp_path / "000003.png").unlink()
    assert sorted(writer.existing()) == [0, 1, 2] and writer.next_index() == 3


def test_a_rewritten_image_replaces_its_old_line(tmp_path):
    writer = write(tmp_path, 2)
    writer.add(solid(50), "prompt 1, rendered again", 1)
    assert [r.text for r in read_dataset(tmp_path)] == ["prompt 0", "prompt 1, rendered again"]


# --- read_dataset errors ----------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(ValueError, match=r"dataset folder .*nope does not exist; render one with `selma images`"):
        read_dataset(tmp_path / "nope")


def test_folder_without_metadata(tmp_path):
    with pytest.raises(ValueError, match=r"has no metadata.jsonl; a dataset folder needs one line per image"):
        read_dataset(tmp_path)


def test_empty_metadata(tmp_path):
    (tmp_path / "metadata.jsonl").write_text("")
    with pytest.raises(ValueError, match=r"dataset .* is empty: metadata.jsonl has no records"):
        read_dataset(tmp_path)


def test_record_without_text(tmp_path):
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a.png"}) + "\n")
    with pytest.raises(ValueError, match=r"metadata.jsonl:1: record lacks the string field\(s\) \['text'\]"):
        read_dataset(tmp_path)


def test_a_line_that_is_not_json(tmp_path):
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "x"}\nnot json\n{}\n')
    with pytest.raises(ValueError, match=r"metadata.jsonl:2 is not valid JSON .*fix or delete that line"):
        read_dataset(tmp_path)


def test_an_image_named_in_metadata_is_missing(tmp_path):
    write(tmp_path, 3)
    (tmp_path / "000001.png").unlink()
    with pytest.raises(ValueError, match=r"1 image\(s\) named in metadata.jsonl are missing, first '000001.png'"):
        read_dataset(tmp_path)
    assert len(read_dataset(tmp_path, check_files=False)) == 3


# --- crash safety ------------------------------------------------------------------------------------


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path):
    writer = write(tmp_path, 2)
    with open(tmp_path / "metadata.jsonl", "ab") as f:
        f.write(b'{"file_name": "000002.png", "te')  # the writer was killed mid-line
    assert [r.index for r in read_dataset(tmp_path)] == [0, 1]
    writer.add(solid(9), "prompt 2", 2)
    lines = (tmp_path / "metadata.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == [0, 1, 2]


def test_an_image_written_again_replaces_its_line_instead_of_adding_one(tmp_path):
    writer = write(tmp_path, 3)
    writer.add(solid(50), "prompt 1, again", 1, seed=7)  # a rerun of a graph reuses slot 1
    lines = read_jsonl(tmp_path / "metadata.jsonl")
    assert [line["index"] for line in lines] == [0, 2, 1], "one line per image; the new line last"
    assert lines[-1]["text"] == "prompt 1, again" and lines[-1]["seed"] == 7
    assert [r.text for r in read_dataset(tmp_path)] == ["prompt 0", "prompt 1, again", "prompt 2"]
    writer.add(solid(51), "prompt 3", 3)  # a new image still appends
    assert [line["index"] for line in read_jsonl(tmp_path / "metadata.jsonl")] == [0, 2, 1, 3]


def test_writer_rejects_an_unknown_format_and_an_unwritable_folder(tmp_path):
    with pytest.raises(ValueError, match=r"image_format='gif' is not supported; use one of \['jpg', 'png', 'webp'\]"):
        DatasetWriter(tmp_path, "gif")
    (tmp_path / "file").write_text("a regular file where a folder should be")
    with pytest.raises(ValueError, match=r"cannot write to dataset folder .*file/data \(.*\); choose a writable run"):
        DatasetWriter(tmp_path / "file" / "data")


WRITER_PROCESS = """
import pathlib, sys, time
from PIL import Image
from selma.datasets.files import DatasetWriter
folder, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
writer = DatasetWriter(folder)
while not (pathlib.Path(folder) / "go").exists():  # start together, so the appends overlap
    time.sleep(0.01)
for i in range(first, first + count):
    writer.add(Image.new("RGB", (4, 4), (i, i, i)), "prompt " + "x" * 3000 + str(i), i, seed=i)
"""


def test_two_processes_append_to_one_folder_without_losing_or_mixing_lines(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER_PROCESS, str(tmp_path), str(first), "40"], env=env)
        for first in (0, 40)
    ]
    (tmp_path / "go").touch()
    assert [p.wait(timeout=120) for p in writers] == [0, 0]
    lines = read_jsonl(tmp_path / "metadata.jsonl")  # raises on an interleaved (invalid) line
    assert sorted(line["index"] for line in lines) == list(range(80))
    assert all(line["text"].endswith(str(line["index"])) for line in lines)
    assert len(read_dataset(tmp_path)) == 80
