"""Load a text-to-image diffusers pipeline from what users have on disk or on the hub.

Three sources, told apart without guessing:

- a **diffusers folder** (it has `model_index.json`): `AutoPipelineForText2Image.from_pretrained`;
- a **single-file checkpoint** (`.safetensors` / `.ckpt`, the A1111/ComfyUI kind): SD1.x/2.x or SDXL, told
  apart from the state-dict keys, loaded with `from_single_file`. diffusers needs the matching diffusers
  *configs* for that; it fetches them from the hub unless `config_folder` names a local diffusers folder of
  the same architecture (needed offline);
- a **hub id** (`org/name`), loaded by diffusers from the Hugging Face hub (or its local cache);
- a **shipped model's name**: `"shapes"`, the small SD-family model of the shapes world trained by
  `tools/train_shapes_model.py` and installed with the package (`NAMED_MODELS`; see `selma.shapes.model`).

Device "auto" is cuda > mps > cpu; dtype "auto" is float16 on CUDA and MPS, float32 on CPU.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SelmaError

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
DTYPE_NAMES = {
    "auto": "auto",
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
ARCHITECTURE_NAMES = {"sd": "SD1.x/2.x", "sdxl": "SDXL"}
NAMED_MODELS = {"shapes": Path(__file__).parent / "shapes"}  # name -> the diffusers folder installed with selma
_SOURCES_HELP = (
    "pass a diffusers folder (with model_index.json), a .safetensors/.ckpt checkpoint file, a hub id "
    "such as 'stable-diffusion-v1-5/stable-diffusion-v1-5', or 'shapes' (the shipped shapes-world model)"
)


class ModelLoadError(SelmaError, ValueError):
    """A model source looked right but could not be loaded (damaged file, hub unreachable, wrong config)."""


def check_device_name(device: str) -> str:
    """Validate a device name without importing torch ('auto', 'cpu', 'mps', 'cuda' or 'cuda:N')."""
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise ValueError(f"device={device!r} is not a device; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def check_dtype_name(dtype: str) -> str:
    """Validate a dtype name without importing torch; returns the canonical name (fp16 -> float16)."""
    if dtype not in DTYPE_NAMES:
        raise ValueError(f"dtype={dtype!r} is not supported; use one of {sorted(set(DTYPE_NAMES.values()))}")
    return DTYPE_NAMES[dtype]


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' if torch sees a GPU, else 'mps' on Apple silicon, else 'cpu'. Explicit names are checked."""
    import torch

    check_device_name(device)
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but this torch ({torch.__version__}) sees no CUDA GPU; use device='auto' or 'cpu'"
        )
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise ValueError(f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA GPU(s); use cuda:0")
    if device == "mps" and not has_mps:
        raise ValueError("device='mps' but MPS is not available here; use device='auto' or 'cpu'")
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """'auto' -> float16 on CUDA/MPS (half the memory, the usual inference precision), float32 on CPU
    (CPU half precision is slow and poorly supported)."""
    import torch

    name = check_dtype_name(dtype)
    if name == "auto":
        name = "float32" if device == "cpu" else "float16"
    return getattr(torch, name)


def checkpoint_architecture(keys: Iterable[str], source: str = "checkpoint") -> str:
    """'sdxl' or 'sd' (SD1.x/2.x) from the key names of an original-layout (LDM) checkpoint."""
    keys = list(keys)
    prefixes = {".".join(k.split(".")[:2]) for k in keys}
    has_unet = "model.diffusion_model" in prefixes
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    if any(k.startswith("conditioner.embedders.0.") for k in keys):
        raise ValueError(
            f"{source} is an SDXL *refiner* (one OpenCLIP text encoder): it refines images rather than "
            "rendering them from text; pass an SDXL base checkpoint"
        )
    if has_unet and any(k.startswith("cond_stage_model.") for k in keys):
        return "sd"
    if has_unet:
        raise ValueError(
            f"{source} holds a diffusion model but no text encoder (a UNet-only or non-SD checkpoint); pass a "
            "full SD1.x/2.x/SDXL checkpoint, or convert the model to a diffusers folder and pass that"
        )
    sample = ", ".join(sorted(prefixes)[:4]) or "no keys"
    raise ValueError(
        f"{source} is not a Stable Diffusion 1.x/2.x/SDXL checkpoint (its keys start with {sample}); "
        "for other models pass a diffusers folder or a hub id"
    )


def read_checkpoint_keys(path: str | Path) -> list[str]:
    """The tensor names of a .safetensors/.ckpt file, without loading the tensors where possible."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                return list(f.keys())
        import torch

        data = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        data = data.get("state_dict", data) if isinstance(data, dict) else data
        if not isinstance(data, dict):
            raise ValueError(f"it holds a {type(data).__name__}, not a state dict")
        return list(data)
    except Exception as e:  # safetensors and torch raise many types for a damaged file
        raise ModelLoadError(
            f"cannot read checkpoint {path} ({type(e).__name__}: {e}); the file is damaged or incomplete "
            "(download it again) or not a checkpoint"
        ) from None


def named_model_dir(name: str) -> Path:
    """The installed folder of a shipped model (`NAMED_MODELS`); a clear error where this installation lacks it."""
    folder = NAMED_MODELS[name]
    if not (folder / "model_index.json").is_file():
        raise ModelLoadError(
            f"the shipped {name!r} model is not installed ({folder} has no model_index.json); reinstall "
            "comfyui-selma, or train it with `python tools/train_shapes_model.py`"
        )
    return folder


def source_kind(model: str | Path) -> str:
    """'named', 'folder', 'file' or 'hub' for a model string; raises ValueError with the fix for a bad local
    path."""
    text = str(model).strip()
    if not text:
        raise ValueError(f"model is empty; {_SOURCES_HELP}")
    if text in NAMED_MODELS:
        return "named"
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            found = sorted(p.name for p in path.iterdir() if p.suffix in CHECKPOINT_SUFFIXES)
            hint = f"; it holds {found[0]}: pass that file instead" if found else ""
            raise ValueError(f"{path} is a folder but not a diffusers pipeline (no model_index.json){hint}")
        return "folder"
    if path.is_file():
        if path.suffix not in CHECKPOINT_SUFFIXES:
            raise ValueError(f"{path} is a {path.suffix or 'suffix-less'} file; {_SOURCES_HELP}")
        return "file"
    looks_local = text.startswith((".", "/", "~", "\\")) or path.suffix in CHECKPOINT_SUFFIXES or text.count("/") > 1
    if looks_local or not _HUB_ID_RE.match(text):
        raise ValueError(f"model path {text!r} does not exist; {_SOURCES_HELP}")
    return "hub"


def load_pipeline(
    model: str | Path, *, device: str = "auto", dtype: str = "auto", config_folder: str | Path | None = None
) -> DiffusionPipeline:
    """A text-to-image pipeline from a diffusers folder, a single-file checkpoint or a hub id, on `device`.

    `config_folder` (single files only): a local diffusers folder of the same architecture whose configs,
    tokenizers and scheduler diffusers uses to assemble the checkpoint; without it diffusers fetches them.
    """
    kind = source_kind(model)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    log.info("loading %s %s on %s as %s", kind, model, device, torch_dtype)
    if kind == "file":
        pipe = _load_single_file(Path(model).expanduser(), torch_dtype, config_folder)
    elif kind == "named":
        pipe = _load_pretrained(str(named_model_dir(str(model).strip())), "folder", torch_dtype)
    else:
        pipe = _load_pretrained(str(Path(model).expanduser()) if kind == "folder" else str(model), kind, torch_dtype)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)  # the caller draws progress; no bar per image batch
    return pipe


def denoiser_of(pipe: object) -> Any:
    """The module experts adapt: a DiT pipeline's transformer (FLUX.1, SD3), else the UNet (SD1.x/2.x/SDXL)."""
    transformer = getattr(pipe, "transformer", None)
    return transformer if transformer is not None else pipe.unet


def pipeline_label(pipe: object) -> str:
    """What to record as `model` for an already-loaded pipeline: its source path or id, else its class."""
    return getattr(pipe, "name_or_path", None) or type(pipe).__name__


def _dtype_kwarg(torch_dtype: torch.dtype) -> dict:
    """diffusers renamed `torch_dtype` to `dtype` (and warns on the old name); older releases know only the old."""
    from diffusers.utils import deprecation_utils

    return {"dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype": torch_dtype}


def _load_pretrained(source: str, kind: str, torch_dtype: torch.dtype) -> DiffusionPipeline:
    from diffusers import AutoPipelineForText2Image

    try:
        return AutoPipelineForText2Image.from_pretrained(source, **_dtype_kwarg(torch_dtype))
    except Exception as e:  # hub, file-system and config errors all land here
        if kind == "hub":
            raise ModelLoadError(
                f"could not load {source!r} from the Hugging Face hub ({type(e).__name__}: {e}); check the id, "
                "log in (`hf auth login`) for gated models, or download it and pass the local folder / .safetensors"
            ) from None
        raise ModelLoadError(
            f"could not load the diffusers folder {source} ({type(e).__name__}: {e}); it may be incomplete "
            "(missing weights) or not a text-to-image pipeline"
        ) from None


def dit_family(keys: Iterable[str]) -> str | None:
    """'flux' or 'sd3' for a FLUX.1 / SD3 checkpoint (original BFL/Stability keys, ComfyUI's, or diffusers'), else
    None."""
    names = {k.removeprefix("model.diffusion_model.") for k in keys}
    if any(k.startswith(("double_blocks.", "single_blocks.", "single_transformer_blocks.")) for k in names):
        return "flux"
    if (
        any(k.startswith("joint_blocks.") for k in names)
        or {"pos_embed.proj.weight", "context_embedder.weight"} <= names
    ):
        return "sd3"
    return None


def _load_dit_single_file(
    path: Path, family: str, keys: list[str], torch_dtype: torch.dtype, config_folder: str | Path | None
) -> DiffusionPipeline:
    """A FLUX.1 / SD3 file: a whole pipeline (transformer + text encoders + VAE in one file, as SD3.5's), or the
    transformer alone (flux1-dev.safetensors, a fine-tune) with the rest from `config_folder`."""
    import diffusers

    pipeline_class = {"flux": diffusers.FluxPipeline, "sd3": diffusers.StableDiffusion3Pipeline}[family]
    transformer_class = {"flux": diffusers.FluxTransformer2DModel, "sd3": diffusers.SD3Transformer2DModel}[family]
    name = {"flux": "FLUX.1", "sd3": "SD3"}[family]
    complete = any(k.startswith("text_encoders.") for k in keys)
    if config_folder is None and not complete:
        raise ValueError(
            f"{path.name} holds a {name} transformer only; pass config_folder= (CLI: --config-folder) a diffusers "
            f"{name} folder or hub id (e.g. black-forest-labs/FLUX.1-dev) for its text encoders, VAE and configs"
        )
    kwargs: dict = _dtype_kwarg(torch_dtype)
    source = (
        str(Path(config_folder).expanduser())
        if config_folder is not None and Path(config_folder).expanduser().is_dir()
        else config_folder
    )
    try:
        if complete:
            return pipeline_class.from_single_file(str(path), **({"config": source} if source else {}), **kwargs)
        transformer = transformer_class.from_single_file(str(path), config=source, subfolder="transformer", **kwargs)
        return pipeline_class.from_pretrained(source, transformer=transformer, **kwargs)
    except Exception as e:
        raise ModelLoadError(
            f"could not assemble {path.name} as {pipeline_class.__name__} with {source} ({type(e).__name__}: {e}); "
            f"config_folder must be a diffusers {name} folder or hub id of the same architecture"
        ) from None


def _load_single_file(path: Path, torch_dtype: torch.dtype, config_folder: str | Path | None) -> DiffusionPipeline:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    keys = read_checkpoint_keys(path)
    family = dit_family(keys)
    if family is not None:
        return _load_dit_single_file(path, family, keys, torch_dtype, config_folder)
    architecture = checkpoint_architecture(keys, str(path))
    pipeline_class = StableDiffusionXLPipeline if architecture == "sdxl" else StableDiffusionPipeline
    kwargs: dict = _dtype_kwarg(torch_dtype)
    if config_folder is not None:
        folder = Path(config_folder).expanduser()
        if not (folder / "model_index.json").is_file():
            raise ValueError(
                f"config_folder={str(config_folder)!r} is not a diffusers folder (no model_index.json); pass a "
                f"local diffusers {ARCHITECTURE_NAMES[architecture]} pipeline folder (weights not needed, configs are)"
            )
        kwargs["config"] = str(folder)
    try:
        return pipeline_class.from_single_file(str(path), **kwargs)
    except Exception as e:
        if config_folder is None:
            raise ModelLoadError(
                f"could not assemble {path.name} as {pipeline_class.__name__} ({type(e).__name__}: {e}). diffusers "
                "needs the matching diffusers configs, fetched from the hub by default; offline, pass "
                f"config_folder= (CLI: --config-folder) a local diffusers {ARCHITECTURE_NAMES[architecture]} folder"
            ) from None
        raise ModelLoadError(
            f"could not load {path.name} with the configs of {config_folder} ({type(e).__name__}: {e}); the folder "
            f"must be a diffusers pipeline of the same architecture ({ARCHITECTURE_NAMES[architecture]}) and size"
        ) from None
