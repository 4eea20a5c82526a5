"""Stage 1, prompts: skills (a name, a description, hand-written seed prompts) -> an LLM writes new prompts per
skill -> ROUGE-L diversity filter -> RUN_DIR/prompts/<skill>.jsonl, plus held-out prompts for evaluation.

`skills` (the Skill type, the built-in library in skill_library/), `generation` (meta-prompt, LLM calls, resume),
`diversity` (SELMA's ROUGE-L filter), `held_out` (prompts kept out of training).
"""

from ..lazy import lazy_exports

_LAZY = {
    "Skill": ".skills",
    "builtin_skill": ".skills",
    "builtin_skill_names": ".skills",
    "load_skills_file": ".skills",
    "save_skill": ".skills",
    "PromptGenConfig": ".generation",
    "PromptGenResult": ".generation",
    "generate_prompts": ".generation",
    "load_prompts": ".generation",
    "prompts_path": ".generation",
    "DiversityFilter": ".diversity",
    "filter_diverse": ".diversity",
    "rouge_l_f": ".diversity",
    "held_out_prompts": ".held_out",
    "load_held_out_prompts": ".held_out",
    "held_out_path": ".held_out",
}
__getattr__, __all__ = lazy_exports(__name__, _LAZY)
