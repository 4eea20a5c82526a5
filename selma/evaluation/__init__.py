"""Evaluation: images of held-out prompts (base, each skill expert, merged, joint) -> DSG questions, answers of a
VQA model, CLIP similarity -> DSG, VQAScore and CLIPScore per image -> the scoreboard (means, 95% intervals,
paired differences vs base) in EVAL_DIR/scoreboard.{json,csv,md,png}; plus the comparison grids.

`questions` (DSG: LLM-written or exact from a template scene), `answerer` / `answerer_factory` (the interface,
backends: vlm_answerer, blip_answerer, openai_answerer, programmatic checkers), `clip_scorer`, `scores` (the
formulas), `answer_cache` (answers.jsonl), `scoring` (images -> scores), `statistics`, `scoreboard`,
`variant_images` (render the variants), `comparison` (the grids).
"""

from ..lazy import lazy_exports

_LAZY = {
    "EvalConfig": ".scoring",
    "EvalImage": ".scoring",
    "score_images": ".scoring",
    "AnswererConfig": ".answerer",
    "Answer": ".answerer",
    "make_answerer": ".answerer_factory",
    "register_checker": ".answerer_factory",
    "Question": ".scores",
    "dsg_score": ".scores",
    "clip_score": ".scores",
    "vqascore_question": ".scores",
    "QuestionWriter": ".questions",
    "scene_questions": ".questions",
    "AnswerCache": ".answer_cache",
    "build_scoreboard": ".scoreboard",
    "write_scoreboard": ".scoreboard",
    "CompareConfig": ".comparison",
    "compare_experts": ".comparison",
    "compare_skills": ".comparison",
    "draw_comparison_grid": ".comparison",
    "save_grid": ".comparison",
}
__getattr__, __all__ = lazy_exports(__name__, _LAZY)
