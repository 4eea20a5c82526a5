"""The whole run: a RunConfig (JSON/TOML) -> every stage in order, each resuming where it stopped ->
RUN_DIR/{prompts,datasets,experts,router,compare}/. What `selma run` and `selma demo` call.

`run_config` (the config file and its checks), `runner` (the stages in order), `stage_state` (what is done
already), `styleinject_config` / `styleinject_stage` (the optional StyleInject stage).
"""

from ..lazy import lazy_exports

_LAZY = {
    "RunConfig": ".run_config",
    "load_run_config": ".run_config",
    "parse_run_config": ".run_config",
    "STAGES": ".runner",
    "RunResult": ".runner",
    "run_pipeline": ".runner",
}
__getattr__, __all__ = lazy_exports(__name__, _LAZY)
