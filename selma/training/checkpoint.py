"""Resumable training checkpoints: one folder, replaced atomically, so a crash never leaves it half-written.

    <work_dir>/checkpoint/
        adapter.safetensors        the trainable adapter tensors, by parameter name
        optimizer.bin, custom_checkpoint_0.pkl (LR scheduler), random_states_<rank>.pkl, scaler.pt
                                   written by `Accelerator.save_state` (every process saves its own RNG)
        state.json                 step, config, base-model fingerprint, world size (written last)

A new checkpoint is written into `checkpoint.tmp/`, flushed to disk, then swapped in with two renames
(`checkpoint` -> `checkpoint.old`, `checkpoint.tmp` -> `checkpoint`); a crash between them leaves
`checkpoint.old`, which `find_checkpoint` falls back to. The previous good checkpoint is deleted only once
the new one is in place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..atomic_files import write_text_atomic

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
ADAPTER_FILE = "adapter.safetensors"


@contextlib.contextmanager
def _quiet_accelerate() -> Iterator[None]:
    """Accelerate logs every file of save_state/load_state at INFO; one line of ours says it better."""
    logger = logging.getLogger("accelerate")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def read_checkpoint_state(path: str | Path) -> dict[str, Any] | None:
    """The state.json of a checkpoint folder, or None if it is missing or unreadable (an unfinished write)."""
    try:
        state = json.loads((Path(path) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    complete = isinstance(state, dict) and isinstance(state.get("step"), int) and (Path(path) / ADAPTER_FILE).is_file()
    return state if complete else None


def find_checkpoint(work_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder under `work_dir`, or None."""
    for name in (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old"):
        path = Path(work_dir) / name
        if read_checkpoint_state(path) is not None:
            return path
    return None


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.iterdir()):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    if os.name == "posix":  # directories cannot be opened for fsync on Windows
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(accelerator, work_dir: str | Path, params: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    """Write a checkpoint of `params` + the accelerator's optimizer/scheduler/RNG state; every process calls it."""
    from safetensors.torch import save_file

    work_dir = Path(work_dir)
    final, tmp, old = (work_dir / f"{CHECKPOINT_DIR}{s}" for s in ("", ".tmp", ".old"))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    with _quiet_accelerate():
        accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_file({name: p.detach().float().cpu().contiguous() for name, p in params.items()}, tmp / ADAPTER_FILE)
        write_text_atomic(tmp / STATE_FILE, json.dumps(state, indent=1, ensure_ascii=False))
        _fsync_tree(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(work_dir)
        shutil.rmtree(old, ignore_errors=True)
        log.info("checkpoint at step %d saved in %s", state["step"], final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, path: str | Path, params: dict[str, torch.Tensor]) -> None:
    """Restore `params` and the accelerator's registered state from a checkpoint folder."""
    from safetensors.torch import load_file

    path = Path(path)
    tensors = load_file(path / ADAPTER_FILE)
    missing = sorted(set(params) - set(tensors))
    unexpected = sorted(set(tensors) - set(params))
    if missing or unexpected:
        first = (missing or unexpected)[0]
        raise ValueError(
            f"checkpoint {path} does not fit this adapter ({len(missing)} tensors missing, {len(unexpected)} "
            f"unexpected, first {first!r}); start over with resume=False (--no-resume)"
        )
    with torch.no_grad():
        for name, p in params.items():
            if tensors[name].shape != p.shape:
                raise ValueError(
                    f"checkpoint {path}: {name} has shape {tuple(tensors[name].shape)}, the adapter {tuple(p.shape)}; "
                    "start over with resume=False (--no-resume)"
                )
            p.copy_(tensors[name].to(device=p.device, dtype=p.dtype))
    with _quiet_accelerate():
        accelerator.load_state(str(path))
