"""One writer per stage: a second process that would write the same prompts, dataset, expert or merged file fails at
once with a message naming the holder (pid, host, since), instead of doubling every line.

    with stage_lock(run_dir / "prompts", "prompts-counting", "writing the prompts of 'counting'"):
        ...

The lock is a small JSON file (`.selma-<stage>.lock` in the folder it guards) created with O_EXCL and removed when
the stage ends, so a finished stage leaves nothing behind. A lock whose holder is dead (same host, no such
process) is taken over safely: one process at a time takes over (through a second O_EXCL file), and only after
re-reading that the holder is still the dead one. A holder on another host cannot be checked: the message says
which file to delete once that process is known to be gone.

Written by hand rather than with `filelock`: filelock's OS locks cannot say who holds them, and deleting their
file on release races with a waiting process (two holders).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .errors import SelmaError


class StageBusy(SelmaError, RuntimeError):
    """Another live process holds the stage."""


def _holder() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(UTC).isoformat(timespec="seconds")}


def _read(path: Path) -> dict | None:
    """The holder recorded in `path`; None while it is being written (or if it is damaged)."""
    for _ in range(3):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("pid"), int):
                return data
        except FileNotFoundError:
            raise
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine (psutil where installed, as in ComfyUI; else POSIX)."""
    try:
        import psutil
    except ImportError:
        if os.name != "posix":
            return True  # cannot tell: never take over
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return psutil.pid_exists(pid)


def _stale(holder: dict | None, path: Path) -> bool:
    if holder is None:  # never written in full: its writer died between create and write, if it is old
        with contextlib.suppress(FileNotFoundError):
            return time.time() - path.stat().st_mtime > 30
        return False
    return holder.get("host") == socket.gethostname() and not pid_alive(holder["pid"])


def _create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(_holder(), f)
    return True


def _take_over(path: Path, seen: dict | None) -> None:
    """Remove the stale lock `path`, if it still holds `seen`; one taker at a time."""
    guard = path.with_name(path.name + ".takeover")
    if not _create(guard):
        if _stale(_read_or_none(guard), guard):
            guard.unlink(missing_ok=True)
        return
    try:
        if _read_or_none(path) == seen:
            path.unlink(missing_ok=True)
    finally:
        guard.unlink(missing_ok=True)


def _read_or_none(path: Path) -> dict | None:
    try:
        return _read(path)
    except FileNotFoundError:
        return None


def acquire(folder: str | Path, stage: str, what: str) -> Path | None:
    """Take the lock of `stage` in `folder` (created if missing) or raise StageBusy; returns the lock file, or None
    when this process holds it already."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".selma-{stage}.lock"
    for _ in range(5):
        if _create(path):
            return path
        try:
            holder = _read(path)
        except FileNotFoundError:
            continue  # released meanwhile: try again
        if holder is not None and holder["pid"] == os.getpid() and holder.get("host") == socket.gethostname():
            return None  # this process holds it already (an outer stage of the same run): re-entrant
        if not _stale(holder, path):
            who = (
                f"process {holder['pid']} on {holder['host']} since {holder['since']}"
                if holder
                else "a process that is starting"
            )
            raise StageBusy(
                f"{what}: {who} is already doing it ({path}). Wait for it to finish, or stop it; if that process "
                f"is gone (another machine, or a reused pid), delete {path}"
            )
        _take_over(path, holder)
    raise StageBusy(f"{what}: could not take the lock {path}; several processes are competing for it")


def release(path: Path) -> None:
    """Remove the lock file if this process holds it."""
    holder = _read_or_none(path)
    if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def stage_lock(folder: str | Path, stage: str, what: str) -> Iterator[Path | None]:
    """`acquire` for the body of a with-block; the lock file is removed when it ends (also on an error), unless an
    outer block of this process holds it."""
    path = acquire(folder, stage, what)
    try:
        yield path
    finally:
        if path is not None:
            release(path)
