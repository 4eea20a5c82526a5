"""Stage 2, datasets: RUN_DIR/prompts/<skill>.jsonl -> the model renders one image per prompt ->
RUN_DIR/datasets/<skill>/ (PNG files + metadata.jsonl), resumable, plus a contact sheet to look at it.

`rendering` (the model renders prompts; resume and re-render), `files` (the folder format: read and write),
`contact_sheet` (thumbnails with captions).
"""

from ..lazy import lazy_exports

_LAZY = {
    "DatasetConfig": ".rendering",
    "DatasetResult": ".rendering",
    "build_dataset": ".rendering",
    "rerender": ".rendering",
    "DatasetRecord": ".files",
    "DatasetWriter": ".files",
    "dataset_dir": ".files",
    "read_dataset": ".files",
    "dataset_contact_sheet": ".contact_sheet",
}
__getattr__, __all__ = lazy_exports(__name__, _LAZY)
