"""Crash-safe file writes for run directories: a run killed at any instant resumes without holes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write a whole file so readers see the old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the mode a plain open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def append_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    """Append whole JSON lines in one write + fsync. A crash can only leave a torn *last* line,
    which `read_jsonl` drops (and `repair_jsonl` cuts off) before the next append."""
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if not lines:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_jsonl(path)
    with open(path, "ab") as f:
        f.write(lines.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def repair_jsonl(path: str | Path) -> int:
    """Cut a torn last line (no trailing newline) left by a killed writer. Returns bytes removed."""
    path = Path(path)
    if not path.is_file():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as f:
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return len(data) - keep


def read_jsonl(path: str | Path) -> list[dict]:
    """All complete records of a JSON-lines file ([] if it does not exist); a torn last line is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    data = path.read_text(encoding="utf-8")
    lines = data.split("\n")
    if not data.endswith("\n"):
        lines = lines[:-1]  # torn tail of an interrupted append
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number} is not valid JSON ({e}); fix or delete that line") from None
    return records
