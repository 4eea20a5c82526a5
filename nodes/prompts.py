"""Nodes for SELMA's first stage: skills, the LLM, prompt generation and the diversity filter."""

from __future__ import annotations

from ..selma.llm import BACKENDS, LLMConfig
from ..selma.prompts.diversity import DiversityFilter
from ..selma.prompts.generation import PromptGenConfig, generate_prompts
from ..selma.prompts.skills import Skill, builtin_skill, builtin_skill_names
from .glue.comfy_env import check_run_name, progress_reporter, run_directory

CATEGORY = "SELMA/prompts"
ROUGE_THRESHOLD_INPUT = (
    "FLOAT",
    {
        "default": 0.8,
        "min": 0.01,
        "max": 1.0,
        "step": 0.01,
        "tooltip": "drop a prompt whose max ROUGE-L F against the pool and the prompts kept so far is above this",
    },
)
CUSTOM = "custom"


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class SelmaSkill:
    DESCRIPTION = "A skill to teach: a built-in one, or your own description, rules and seed examples."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SELMA_SKILL",)
    RETURN_NAMES = ("skill",)
    OUTPUT_TOOLTIPS = ("the skill, for SELMA Generate Prompts",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "skill": (
                    [*builtin_skill_names(), CUSTOM],
                    {"default": "counting", "tooltip": "'custom' uses the fields below"},
                ),
            },
            "optional": {
                "name": ("STRING", {"default": "my_skill", "tooltip": "custom: file-safe id (a-z, 0-9, _ -)"}),
                "description": (
                    "STRING",
                    {"multiline": True, "default": "", "tooltip": "custom: what the prompts teach"},
                ),
                "examples": (
                    "STRING",
                    {"multiline": True, "default": "", "tooltip": "custom: >= 3 seed prompts, one per line"},
                ),
                "rules": (
                    "STRING",
                    {"multiline": True, "default": "", "tooltip": "custom: rules for the LLM, one per line"},
                ),
                "word_limit": (
                    "INT",
                    {"default": 30, "min": 5, "max": 200, "tooltip": "custom: max words per prompt"},
                ),
            },
        }

    def make(self, skill, name="my_skill", description="", examples="", rules="", word_limit=30):
        if skill != CUSTOM:
            return (builtin_skill(skill),)
        return (Skill(name, description, tuple(_lines(examples)), tuple(_lines(rules)), word_limit),)


class SelmaLLM:
    DESCRIPTION = (
        "The LLM that writes prompts. 'template' is offline and needs nothing. For 'openai' (OpenAI, vLLM, "
        "Ollama, LM Studio...) put the API key in an environment variable and give its NAME here: keys typed "
        "into widgets would be saved in every workflow and PNG."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SELMA_LLM",)
    RETURN_NAMES = ("llm",)
    OUTPUT_TOOLTIPS = ("the prompt writer, for SELMA Generate Prompts",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "backend": (
                    list(BACKENDS),
                    {
                        "default": "template",
                        "tooltip": "template: offline; openai: an OpenAI-compatible server; transformers: local",
                    },
                ),
                "model": ("STRING", {"default": "", "tooltip": "openai: model name; transformers: local folder"}),
                "base_url": (
                    "STRING",
                    {
                        "default": "",
                        "tooltip": "OpenAI-compatible URL, e.g. http://127.0.0.1:11434/v1; empty = api.openai.com",
                    },
                ),
                "api_key_env": (
                    "STRING",
                    {"default": "OPENAI_API_KEY", "tooltip": "NAME of the env variable with the key (never the key)"},
                ),
                "temperature": (
                    "FLOAT",
                    {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05, "tooltip": "higher: more varied prompts"},
                ),
            },
            "optional": {
                "api": (
                    ["chat", "completions"],
                    {"default": "chat", "tooltip": "chat/completions or legacy completions"},
                ),
            },
        }

    def make(self, backend, model, base_url, api_key_env, temperature, api="chat"):
        config = LLMConfig(
            backend=backend,
            model=model.strip(),
            base_url=base_url.strip(),
            api_key_env=api_key_env.strip(),
            temperature=temperature,
            api=api,
        )
        return (config,)


class SelmaGeneratePrompts:
    DESCRIPTION = (
        "Writes COUNT diverse prompts for a skill into output/selma/<run_name>/prompts/<skill>.jsonl "
        "(SELMA's in-context generation + ROUGE-L filter). Resumes: running again only tops up the file."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "SELMA_PROMPTS")
    RETURN_NAMES = ("prompts", "prompt_set")
    OUTPUT_IS_LIST = (True, False)
    OUTPUT_TOOLTIPS = ("one prompt per list item: ComfyUI runs the nodes below once per prompt", "for SELMA nodes")
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "skill": ("SELMA_SKILL", {"tooltip": "from SELMA Skill"}),
                "count": (
                    "INT",
                    {"default": 100, "min": 1, "max": 100000, "tooltip": "prompts wanted (SELMA: ~1-5k)"},
                ),
                "threshold": ROUGE_THRESHOLD_INPUT,
                "seed": (
                    "INT",
                    {"default": 0, "min": 0, "max": 0x7FFFFFFF, "tooltip": "the same seed writes the same prompts"},
                ),
                "run_name": ("STRING", {"default": "selma", "tooltip": "folder under output/selma/"}),
            },
            "optional": {
                "llm": ("SELMA_LLM", {"tooltip": "default: the offline template writer"}),
                "concurrency": ("INT", {"default": 8, "min": 1, "max": 256, "tooltip": "LLM calls in flight"}),
            },
        }

    VALIDATE_INPUTS = staticmethod(check_run_name)

    def generate(self, skill, count, threshold, seed, run_name, llm=None, concurrency=8):
        config = PromptGenConfig(count=count, threshold=threshold, seed=seed, concurrency=concurrency)
        result = generate_prompts(
            skill, llm or LLMConfig(), run_directory(run_name), config, on_progress=progress_reporter(count)
        )
        return (result.prompts[:count], result)


class SelmaFilterPrompts:
    DESCRIPTION = "Keeps the prompts of a list whose max ROUGE-L F against the pool and the kept ones is <= threshold."
    CATEGORY = CATEGORY
    INPUT_IS_LIST = True
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("kept",)
    OUTPUT_TOOLTIPS = ("the prompts kept, as a list",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "filter"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "prompts": (
                    "STRING",
                    {"forceInput": True, "tooltip": "a STRING list (or one string, one prompt per line)"},
                ),
                "threshold": ROUGE_THRESHOLD_INPUT,
            },
            "optional": {
                "pool": (
                    "STRING",
                    {"multiline": True, "default": "", "tooltip": "prompts already kept, one per line"},
                ),
            },
        }

    def filter(self, prompts, threshold, pool=("",)):
        candidates = [line for item in prompts for line in _lines(item)]
        diversity = DiversityFilter(threshold[0], pool=[line for item in pool for line in _lines(item)])
        return ([text for text in candidates if diversity.offer(text)[0]],)


NODE_CLASS_MAPPINGS = {
    "SelmaSkill": SelmaSkill,
    "SelmaLLM": SelmaLLM,
    "SelmaGeneratePrompts": SelmaGeneratePrompts,
    "SelmaFilterPrompts": SelmaFilterPrompts,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "SelmaSkill": "SELMA Skill",
    "SelmaLLM": "SELMA LLM",
    "SelmaGeneratePrompts": "SELMA Generate Prompts",
    "SelmaFilterPrompts": "SELMA Filter Prompts (ROUGE-L)",
}
