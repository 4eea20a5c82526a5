"""Experts on disk: a trained (or merged) LoRA or StyleInject expert <-> one .safetensors file with a header that
says what it is (method, skill, recipe), loadable by ComfyUI's stock LoraLoader (LoRA) and by our loaders.

`lora_expert` (the in-memory LoRA expert), `lora_files` (save/load/apply, kohya names), `lora_peft` (the PEFT
bridge), `style_inject_*` (StyleInject files), `header` (metadata encoding), `ref` (a reference to a file on disk).
"""

from ..lazy import lazy_exports

_LAZY = {
    "LoraExpert": ".lora_expert",
    "LoraModule": ".lora_expert",
    "save_lora_expert": ".lora_files",
    "load_lora_expert": ".lora_files",
    "kohya_state_dict": ".lora_files",
    "apply_lora_expert": ".lora_peft",
    "lora_expert_from_peft": ".lora_peft",
    "StyleInjectExpert": ".style_inject_files",
    "load_style_inject_expert": ".style_inject_files",
    "apply_style_inject_expert": ".style_inject_files",
    "save_style_inject_expert": ".style_inject_save",
    "style_inject_expert_from_model": ".style_inject_from_model",
    "ExpertRef": ".ref",
    "read_header": ".ref",
}
__getattr__, __all__ = lazy_exports(__name__, _LAZY)
