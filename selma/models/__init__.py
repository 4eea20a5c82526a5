"""Models: a checkpoint file, a diffusers folder or a hub id -> a diffusers pipeline (SD1.x/2.x, SDXL, SD3.5,
FLUX), and the maps between diffusers and ComfyUI (LDM) module names that expert files rely on.

`pipelines` (loading, devices, dtypes, the shipped models by name: `shapes/` holds the shapes-world model),
`unet_names` (diffusers <-> LDM names of UNet modules).
"""

from ..lazy import lazy_exports

_LAZY = {
    "load_pipeline": ".pipelines",
    "ModelLoadError": ".pipelines",
    "resolve_device": ".pipelines",
    "resolve_dtype": ".pipelines",
    "pipeline_label": ".pipelines",
    "NAMED_MODELS": ".pipelines",
    "named_model_dir": ".pipelines",
    "UnetLayout": ".unet_names",
    "diffusers_to_ldm": ".unet_names",
    "ldm_to_diffusers": ".unet_names",
}
__getattr__, __all__ = lazy_exports(__name__, _LAZY)
