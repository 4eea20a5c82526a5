"""What a stage checks before it works: where the run's model is, whether an expert is trained, whether an
output is newer than its inputs. Shared by the stage runner and the StyleInject stage; loads no model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..models.pipelines import NAMED_MODELS, named_model_dir
from .run_config import TINY_MODEL

if TYPE_CHECKING:
    from .run_config import RunConfig

TINY_MODEL_DIR = Path("models") / "tiny-sd"  # inside the run dir


def _build_once(path: Path, build) -> Path:
    """Build a model folder once, into a temp folder first, so a killed build never leaves half of one."""
    if not (path / "config.json").is_file() and not (path / "model_index.json").is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}-") as tmp:
            build(Path(tmp) / "model")
            shutil.rmtree(path, ignore_errors=True)
            (Path(tmp) / "model").rename(path)
    return path


def tiny_model(run_dir: str | Path) -> Path:
    """RUN_DIR/models/tiny-sd: a tiny random SD1.x diffusers folder, built once."""
    from ..testing.tiny_models import build_tiny_sd

    return _build_once(Path(run_dir) / TINY_MODEL_DIR, lambda folder: build_tiny_sd(folder, sample_size=32))


def tiny_answerer(run_dir: str | Path, backend: str) -> Path:
    """RUN_DIR/models/tiny-<vlm|blip|clip>: a tiny random answerer (or CLIP) for the offline demo, built once."""
    from ..testing import tiny_vlms

    builders = {
        "transformers": ("tiny-vlm", tiny_vlms.build_tiny_chat_vlm),
        "blip": ("tiny-blip", tiny_vlms.build_tiny_blip_vqa),
        "clip": ("tiny-clip", tiny_vlms.build_tiny_clip),
    }
    if backend not in builders:
        raise ValueError(f"there is no tiny {backend!r} model; 'tiny' works for transformers, blip and CLIP")
    name, build = builders[backend]
    return _build_once(Path(run_dir) / "models" / name, build)


def training_dataset(config: RunConfig, skill_name: str) -> Path:
    """The dataset an expert of the skill trains on: datasets/<skill>/, or filtered/<skill>/ (the images that passed
    the DSG filter) when [images] filter_threshold is set."""
    from ..datasets.files import dataset_dir, filtered_dataset_dir

    if config.filter_threshold:
        return filtered_dataset_dir(config.run_dir, skill_name)
    return dataset_dir(config.run_dir, skill_name)


def resolve_model(config: RunConfig, model: str) -> str:
    """A model source for load_pipeline: the tiny model's folder for 'tiny', else the string as given."""
    if model in NAMED_MODELS:  # the shipped model's installed folder (printed as an artifact, loaded as a folder)
        return str(named_model_dir(model))
    return str(tiny_model(config.run_dir)) if model == TINY_MODEL else model


def training_finished(paths, train) -> bool:
    """Whether the expert at `paths` (ExpertPaths) is written and its checkpoint is finished at `train.steps`:
    checked without loading a model, so a rerun of a finished run loads none."""
    from ..training.checkpoint import find_checkpoint, read_checkpoint_state

    checkpoint = find_checkpoint(paths.work)
    state = read_checkpoint_state(checkpoint) if checkpoint else None
    return bool(paths.expert.is_file() and state and state.get("finished") and state["step"] == train.steps)


def is_up_to_date(outputs: list[Path], inputs: list[Path]) -> bool:
    """Every output exists and is newer than every input (make's rule)."""
    if not all(p.exists() for p in outputs):
        return False
    newest_input = max((p.stat().st_mtime_ns for p in inputs if p.exists()), default=0)
    return min(p.stat().st_mtime_ns for p in outputs) >= newest_input
