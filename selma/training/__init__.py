"""Expert training (DESIGN §3.3): one loop over a small denoiser-backend protocol, SELMA's recipe as defaults.

    from selma.training import TrainConfig, load_diffusers_backend, train_expert
    backend = load_diffusers_backend("path/to/sd15", device="cuda", dtype=torch.float16)
    result = train_expert(backend, "run/datasets/counting", "run/experts", TrainConfig(), skill="counting")

Names resolve lazily, so `import selma.training` (e.g. for `TrainConfig`) does not load torch.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "TrainConfig": ".config",
    "DenoiserBackend": ".backend",
    "PreviewRenderer": ".backend",
    "ExpertExporter": ".backend",
    "StyleInjectExporter": ".backend",
    "select_conditioning": ".backend",
    "concat_conditioning": ".backend",
    "DiffusersBackend": ".diffusers_backend",
    "load_diffusers_backend": ".diffusers_backend",
    "TrainingData": ".data",
    "StepSampler": ".data",
    "train_expert": ".loop",
    "TrainResult": ".train_result",
    "ExpertPaths": ".loop",
    "NonFiniteLoss": ".errors",
    "TrainingOutOfMemory": ".errors",
    "CheckpointMismatch": ".errors",
    "TrainingBusy": ".errors",
    "ADAPTER_NAME": ".adapter",
}

__getattr__, __all__ = lazy_exports(__name__, _LAZY)
