"""The dataset folder of one skill, in the Hugging Face imagefolder layout.

    datasets/<skill>/000000.png ...
    datasets/<skill>/metadata.jsonl   {"file_name": "000000.png", "text": "...", "index": 0, "seed": 7, ...}

`index` is the prompt's position in `prompts/<skill>.jsonl` (or in the list given); images are written
atomically *before* their metadata line, so a record always points at a whole image, and a rerun knows
exactly which indices are missing. Several processes (accelerate) may append to one folder: each line
goes in one locked write. An image written again (a rerun of a ComfyUI graph) replaces its line, so the file
holds one line per image for any imagefolder reader.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from ..atomic_files import read_jsonl, repair_jsonl, write_bytes_atomic

METADATA = "metadata.jsonl"
IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}


@dataclass(frozen=True)
class DatasetRecord:
    file_name: str
    text: str
    index: int
    seed: int | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"file_name": self.file_name, "text": self.text, "index": self.index, "seed": self.seed, **self.extra}

    @classmethod
    def from_json(cls, data: dict, where: str) -> DatasetRecord:
        missing = [k for k in ("file_name", "text") if not isinstance(data.get(k), str)]
        if missing:
            raise ValueError(
                f"{where}: record lacks the string field(s) {missing}; every line needs file_name and text"
            )
        extra = {k: v for k, v in data.items() if k not in ("file_name", "text", "index", "seed")}
        index = data.get("index")
        return cls(data["file_name"], data["text"], int(index) if index is not None else -1, data.get("seed"), extra)


def dataset_dir(run_dir: str | Path, skill_name: str) -> Path:
    return Path(run_dir) / "datasets" / skill_name


def filtered_dataset_dir(run_dir: str | Path, skill_name: str) -> Path:
    """Where the DSG filter writes the images of datasets/<skill>/ that passed it."""
    return Path(run_dir) / "filtered" / skill_name


def read_dataset(folder: str | Path, *, check_files: bool = True) -> list[DatasetRecord]:
    """All records of a dataset folder, sorted by index (then file name). Raises ValueError with the fix
    when the folder, its metadata.jsonl, or an image a record names is missing, or when it is empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"dataset folder {folder} does not exist; render one with `selma images` or the writer node")
    meta = folder / METADATA
    if not meta.is_file():
        raise ValueError(f"{folder} has no {METADATA}; a dataset folder needs one line per image (file_name, text)")
    latest: dict[str, DatasetRecord] = {}
    for number, data in enumerate(read_jsonl(meta), 1):
        record = DatasetRecord.from_json(data, f"{meta}:{number}")
        latest[record.file_name] = record  # a re-rendered image replaces its old line
    records = sorted(latest.values(), key=lambda r: (r.index, r.file_name))
    if not records:
        raise ValueError(f"dataset {folder} is empty: {METADATA} has no records")
    if check_files:
        absent = [r.file_name for r in records if not (folder / r.file_name).is_file()]
        if absent:
            raise ValueError(
                f"dataset {folder}: {len(absent)} image(s) named in {METADATA} are missing, first {absent[0]!r}; "
                "rerun the renderer (it fills the gaps) or delete those lines"
            )
    return records


class DatasetWriter:
    """Adds image-text pairs to a dataset folder, crash-safe and safe across processes."""

    def __init__(self, folder: str | Path, image_format: str = "png") -> None:
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format={image_format!r} is not supported; use one of {sorted(IMAGE_FORMATS)}")
        self.folder = Path(folder)
        self.image_format = image_format
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise ValueError(
                f"cannot write to dataset folder {self.folder} ({e.strerror}); choose a writable run directory"
            ) from None
        self.metadata = self.folder / METADATA
        self._lock = FileLock(str(self.folder / f".{METADATA}.lock"))

    def existing(self) -> dict[int, DatasetRecord]:
        """Records already written whose image exists, by index."""
        if not self.metadata.is_file():
            return {}
        records = {}
        for number, data in enumerate(read_jsonl(self.metadata), 1):
            record = DatasetRecord.from_json(data, f"{self.metadata}:{number}")
            if (self.folder / record.file_name).is_file():
                records[record.index] = record
        return records

    def next_index(self) -> int:
        return 1 + max(self.existing(), default=-1)

    def file_name(self, index: int) -> str:
        return f"{index:06d}.{self.image_format}"

    def remove_lock_file(self) -> None:
        """Delete the append lock's file once no process writes here any more (the stage is over): a finished
        dataset folder holds only its images and metadata.jsonl."""
        Path(self._lock.lock_file).unlink(missing_ok=True)

    def add(self, image, text: str, index: int, seed: int | None = None, **extra) -> DatasetRecord:
        """Write `image` (a PIL image) atomically, then append its metadata line."""
        record = DatasetRecord(self.file_name(index), text, index, seed, extra)
        buffer = io.BytesIO()
        image.save(buffer, format=IMAGE_FORMATS[self.image_format])
        write_bytes_atomic(self.folder / record.file_name, buffer.getvalue())
        line = (json.dumps(record.to_json(), ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:  # filelock: portable (ComfyUI runs on Windows too)
            repair_jsonl(self.metadata)
            old = self.metadata.read_bytes() if self.metadata.is_file() else b""
            kept = [ln for ln in old.splitlines(keepends=True) if _file_name_of(ln) != record.file_name]
            if len(kept) < old.count(b"\n"):  # a re-rendered image: its line is replaced, not repeated
                write_bytes_atomic(self.metadata, b"".join(kept) + line)
            else:
                with open(self.metadata, "ab") as f:
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())
        return record


def _file_name_of(line: bytes) -> str | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data.get("file_name") if isinstance(data, dict) else None
