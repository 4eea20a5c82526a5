"""Inspection: a StyleInject expert + prompts -> sample while recording every router per layer and step ->
a RouterReport (router.json) and its pictures (layers x steps heatmaps, the router embedding of the paper's Fig. 9).

`router_report` (recording, the report format), `router_plots` (the pictures).
"""

from ..lazy import lazy_exports

_LAZY = {
    "RouterReport": ".router_report",
    "inspect_router": ".router_report",
    "heatmap": ".router_plots",
    "embedding": ".router_plots",
    "save_png": ".router_plots",
}
__getattr__, __all__ = lazy_exports(__name__, _LAZY)
