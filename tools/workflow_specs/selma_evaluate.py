"""selma_evaluate: base vs merged on held-out prompts, scored for faithfulness: the workflow ends in the scoreboard."""

from workflow_kit import SMOKE, Graph, base_vs_merged, evaluate, note
from workflow_kit.pieces import ANSWERER_MODEL, CLIP_MODEL

TITLE = "SELMA: evaluate (scoreboard)"
STAGES = ["load experts", "merge", "render held-out", "evaluate"]
NEEDS = ("SelmaEvaluate", "SelmaEvaluator", "SelmaApplyExpert")
FILES = [f"selma/{SMOKE['run_name']}-{skill}.safetensors" for skill in ("shapes_counting", "shapes_spatial")]


def build(g: Graph) -> None:
    note(
        g,
        "SELMA: evaluate",
        "Merges two experts, renders base vs merged on held-out prompts (same seed), and scores every image for "
        "faithfulness to its prompt: DSG (the share of the prompt's questions answered yes: 'Are there two red "
        "circles?') and VQAScore (P(yes) for 'Does this figure show ...?'). On the shapes model the world's exact "
        "checker answers. The scoreboard shows means with 95% intervals and the paired difference vs base.",
        [
            f"the experts: *SELMA Load Expert* -> expert_name ({FILES[0]}, {FILES[1]}: what selma_full_pipeline "
            "publishes)",
            f"the answerer: *SELMA Evaluator* (programmatic / {SMOKE['model']} = the shapes checker). On a real "
            f"model: transformers + a chat VLM folder or hub id (e.g. {ANSWERER_MODEL}), a BLIP VQA model or an "
            f"OpenAI-compatible vision server (key by env-variable NAME); CLIP ({CLIP_MODEL}) adds CLIPScore",
            "DSG questions: shapes prompts are read by the world's grammar; for other prompts connect a *SELMA LLM* "
            "(openai/transformers) to the Evaluator",
            f"sampling {SMOKE['sample_steps']} steps, CFG {SMOKE['cfg']}: every *KSampler* -> steps / cfg",
            f"resolution {SMOKE['resolution']}x{SMOKE['resolution']}: the shipped model's size",
        ],
    )
    prompts, columns = base_vs_merged(g, FILES)
    evaluate(g, columns, prompts, "held_out", "Evaluate: base vs merged")
