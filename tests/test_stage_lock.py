"""One writer per stage: a second process fails at once naming the holder; a dead holder's lock is taken over; a
finished stage leaves no lock file."""

from __future__ import annotations

import os
import time

import pytest

from selma.cli import main
from selma.stage_lock import StageBusy, acquire, release, stage_lock


def test_a_second_writer_fails_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path, lock_holder):
    child = lock_holder(tmp_path, "images")
    try:
        with pytest.raises(
            StageBusy, match=rf"process {child.pid} on .* since 20\d\d-.*delete .*\.selma-images\.lock"
        ):
            acquire(tmp_path, "images", "rendering")
    finally:
        child.kill()  # SIGKILL: the lock file stays, its holder is gone
    assert (tmp_path / ".selma-images.lock").is_file()
    with stage_lock(tmp_path, "images", "rendering") as path:
        assert path == tmp_path / ".selma-images.lock"
        assert acquire(tmp_path, "images", "rendering") is None  # re-entrant in the holding process
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # released: nothing left behind


def test_a_lock_of_another_host_is_never_taken_over(tmp_path):
    (tmp_path / ".selma-train.lock").write_text('{"pid": 1, "host": "elsewhere", "since": "2026-01-01T00:00:00"}')
    with pytest.raises(StageBusy, match="process 1 on elsewhere"):
        acquire(tmp_path, "train", "training")
    release(tmp_path / ".selma-train.lock")  # not ours: left alone
    assert (tmp_path / ".selma-train.lock").is_file()


def test_two_prompt_writers_on_one_skill_leave_one_set_of_prompts(tmp_path, capsys, lock_holder):
    args = ["prompts", "--run-dir", str(tmp_path), "--skill", "counting", "--count", "8"]
    child = lock_holder(tmp_path / "prompts", "prompts-counting")
    try:
        assert main(args) == 2
        assert f"process {child.pid}" in capsys.readouterr().err
    finally:
        child.kill()
    assert main(args) == 0  # the stale lock of the killed writer is taken over
    lines = (tmp_path / "prompts" / "counting.jsonl").read_text().splitlines()
    assert len(lines) == 8 and sorted(os.listdir(tmp_path / "prompts")) == ["counting.jsonl"]


def test_a_finished_images_stage_leaves_only_the_documented_files(tmp_path, lock_holder):
    from selma.atomic_files import append_jsonl

    append_jsonl(
        tmp_path / "prompts" / "shapes_counting.jsonl", [{"text": "two red circles"}, {"text": "a blue square"}]
    )
    assert main(["images", "--run-dir", str(tmp_path), "--model", "renderer", "--width", "64", "--height", "64"]) == 0
    files = sorted(os.listdir(tmp_path / "datasets" / "shapes_counting"))
    assert files == ["000000.png", "000001.png", "metadata.jsonl"]
    child = lock_holder(tmp_path / "datasets" / "shapes_counting", "images")
    try:
        started = time.time()
        assert main(["images", "--run-dir", str(tmp_path), "--model", "renderer"]) == 2  # fails at once, no wait
        assert time.time() - started < 30
    finally:
        child.kill()
