"""selma_evaluate: base vs merged on held-out prompts, scored for faithfulness: the workflow ends in the scoreboard."""

from workflow_kit import SMOKE, Graph, base_vs_merged, evaluate, note
from workflow_kit.pieces import ANSWERER_MODEL, CLIP_MODEL

TITLE = "SELMA: evaluate (scoreboard)"
STAGES = ["load experts", "merge", "render held-out", "evaluate"]
NEEDS = ("SelmaEvaluate", "SelmaEvaluator", "SelmaApplyExpert")
FILES = [f"selma/{SMOKE['run_name']}-{skill}.safetensors" for skill in ("counting", "spatial")]


def build(g: Graph) -> None:
    note(
        g,
        "SELMA: evaluate",
        "Merges two experts, renders base vs merged on held-out prompts (same seed), and scores every image for "
        "faithfulness to its prompt: VQAScore (a VLM's P(yes) for 'Does this figure show ...?') and CLIPScore. "
        "The scoreboard shows means with 95% intervals and the paired difference vs base.",
        [
            f"the experts: *SELMA Load Expert* -> expert_name ({FILES[0]}, {FILES[1]})",
            f"the answerer ({ANSWERER_MODEL}) and CLIP ({CLIP_MODEL}): *SELMA Evaluator*; any local folder, a BLIP "
            "VQA model or an OpenAI-compatible vision server (key by env-variable NAME) works",
            "DSG needs questions: connect a *SELMA LLM* (openai/transformers) to the Evaluator and add dsg to metrics",
            f"sampling steps {SMOKE['sample_steps']}: every *KSampler* -> steps",
            f"resolution {SMOKE['resolution']}x{SMOKE['resolution']}: *Empty Latent Image* -> width/height",
        ],
    )
    prompts, columns = base_vs_merged(g, FILES)
    evaluate(g, columns, prompts, "held_out", "Evaluate: base vs merged")
