"""SELMA's first stage: an LLM writes many prompts that teach one skill, kept diverse by ROUGE-L.

As in SELMA's code: every call shows the LLM three examples drawn at random from the seed prompts *and
the prompts accepted so far*, asks for 20 more, and parses the numbered lines of the answer. Each
candidate is kept iff its maximum ROUGE-L F against the seeds and everything kept so far is at most the
threshold; a kept prompt joins the pool at once. Calls run concurrently, but their answers are filtered
in call order, so a deterministic backend gives the same file whatever the concurrency. Kept prompts
are appended to `prompts/<skill>.jsonl` after every call, so a killed run resumes where it stopped; a prompt
the offline template backend wrote also carries the scene it was built from (`"scene"`, see
`selma.llm.grammars.scene`), from which the evaluation stage derives its DSG questions exactly.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic_files import append_jsonl, read_jsonl
from ..errors import MalformedAnswer
from ..llm import LLMBackend, LLMConfig, LLMRequest, make_backend
from ..stage_lock import stage_lock
from .diversity import DiversityFilter
from .skills import Skill, save_skill

log = logging.getLogger(__name__)

SYSTEM_MESSAGE = "You write prompts for a text-to-image model. Answer with a numbered list only."
_NUMBERED_RE = re.compile(r"^\s*\(?(\d{1,4})\s*[.):\]]\s*(.*?)\s*$")
_QUOTES = ('"', "“", "”", "'")

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class PromptGenConfig:
    count: int = field(default=1000, metadata={"help": "kept prompts wanted in prompts/<skill>.jsonl"})
    threshold: float = field(default=0.8, metadata={"help": "keep iff max ROUGE-L F <= threshold, in (0, 1]"})
    prompts_per_call: int = field(default=20, metadata={"help": "new prompts asked of the LLM per call"})
    examples_per_call: int = field(default=3, metadata={"help": "in-context examples shown per call"})
    concurrency: int = field(default=8, metadata={"help": "LLM calls in flight at once"})
    max_calls: int = field(default=0, metadata={"help": "call budget for this run; 0 = 4 per 20 missing + 4"})
    seed: int = 0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"PromptGenConfig.count={self.count} must be >= 1")
        if not (0.0 < self.threshold <= 1.0):  # also rejects nan
            raise ValueError(f"PromptGenConfig.threshold={self.threshold} is outside (0, 1]; SELMA uses 0.8")
        if not 1 <= self.prompts_per_call <= 100:
            raise ValueError(f"PromptGenConfig.prompts_per_call={self.prompts_per_call} is outside 1..100")
        if not 1 <= self.examples_per_call <= 10:
            raise ValueError(f"PromptGenConfig.examples_per_call={self.examples_per_call} is outside 1..10")
        if not 1 <= self.concurrency <= 256:
            raise ValueError(f"PromptGenConfig.concurrency={self.concurrency} is outside 1..256")
        if self.max_calls < 0:
            raise ValueError(f"PromptGenConfig.max_calls={self.max_calls} must be >= 0 (0 = automatic)")

    def call_budget(self, missing: int) -> int:
        return self.max_calls or 4 * math.ceil(missing / self.prompts_per_call) + 4


@dataclass
class PromptGenResult:
    """What a run produced. `prompts` holds every kept prompt in the file, old and new, in order."""

    path: Path
    prompts: list[str]
    skill: str = ""
    added: int = 0
    calls: int = 0
    candidates: int = 0
    rejected_similar: int = 0
    malformed_lines: int = 0
    too_long: int = 0
    failed_calls: int = 0
    target: int = 0

    @property
    def run_dir(self) -> Path:
        return self.path.parent.parent

    @property
    def complete(self) -> bool:
        return len(self.prompts) >= self.target

    def summary(self) -> str:
        return (
            f"{len(self.prompts)}/{self.target} prompts in {self.path} (+{self.added} from {self.calls} calls; "
            f"{self.rejected_similar} too similar, {self.too_long} over the word limit, "
            f"{self.malformed_lines} malformed lines skipped, {self.failed_calls} unusable answers)"
        )


def prompts_path(run_dir: str | Path, skill_name: str) -> Path:
    return Path(run_dir) / "prompts" / f"{skill_name}.jsonl"


def load_prompts(run_dir: str | Path, skill_name: str) -> list[str]:
    """The kept prompts of a skill, in the order they were accepted."""
    return [r["text"] for r in read_jsonl(prompts_path(run_dir, skill_name))]


def render_meta_prompt(skill: Skill, examples: list[str], num_prompts: int) -> str:
    """The instruction shown to the LLM: skill, numbered rules, examples, and the ask for N more."""
    rules = [*skill.rules, f"Each description has at most {skill.word_limit} words."]
    lines = [f"Write descriptions of images for this skill: {skill.description}", "", "Rules:"]
    lines += [f"{i}. {rule}" for i, rule in enumerate(rules, 1)]
    lines += ["", "Examples:"]
    lines += [f"{i}. {example}" for i, example in enumerate(examples, 1)]
    lines += [
        "",
        f"Write {num_prompts} more descriptions that follow the rules and differ from the examples and from "
        f"each other, as a numbered list from {len(examples) + 1} to {len(examples) + num_prompts}, one per line.",
    ]
    return "\n".join(lines)


def build_request(skill: Skill, examples: list[str], num_prompts: int, seed: int, call_id: int) -> LLMRequest:
    prompt = render_meta_prompt(skill, examples, num_prompts)
    messages = ({"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": prompt})
    return LLMRequest(messages, prompt, skill, tuple(examples), num_prompts, seed, call_id)


@dataclass
class ParsedAnswer:
    prompts: list[str]
    malformed: int = 0
    too_long: int = 0


def parse_numbered_list(text: str, word_limit: int) -> ParsedAnswer:
    """Prompts from the numbered lines of an answer; other non-empty lines are counted as malformed."""
    parsed = ParsedAnswer([])
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _NUMBERED_RE.match(line)
        body = match.group(2) if match else ""
        if len(body) >= 2 and body[0] in _QUOTES and body[-1] in _QUOTES:
            body = body[1:-1].strip()
        if not body:
            parsed.malformed += 1
        elif len(body.split()) > word_limit:
            parsed.too_long += 1
        else:
            parsed.prompts.append(body)
    return parsed


def call_seed(seed: int, skill_name: str, call_id: int) -> int:
    """A stable 31-bit seed per (run seed, skill, call), so reruns ask the same questions."""
    digest = hashlib.sha256(f"{seed}:{skill_name}:{call_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def generate_prompts(
    skill: Skill,
    llm: LLMConfig | LLMBackend,
    run_dir: str | Path,
    config: PromptGenConfig = PromptGenConfig(),
    on_progress: ProgressFn | None = None,
) -> PromptGenResult:
    """Grow `prompts/<skill>.jsonl` in `run_dir` to `config.count` kept prompts (resuming a previous run).

    `on_progress(kept, target)` is called after every call; if it raises (e.g. ComfyUI's Cancel), pending
    calls are dropped and the exception propagates; everything kept so far is already on disk.
    """
    path = prompts_path(run_dir, skill.name)
    with stage_lock(path.parent, f"prompts-{skill.name}", f"writing the prompts of {skill.name!r} into {path}"):
        return _generate(skill, llm, run_dir, path, config, on_progress)


def _generate(skill, llm, run_dir, path: Path, config: PromptGenConfig, on_progress) -> PromptGenResult:
    save_skill(skill, run_dir)
    records = read_jsonl(path)
    kept = [r["text"] for r in records]
    result = PromptGenResult(path=path, prompts=kept, skill=skill.name, target=config.count)
    if len(kept) >= config.count:
        return result

    diversity = DiversityFilter(config.threshold, pool=[*skill.examples, *kept])
    seen = {_normalise(t) for t in (*skill.examples, *kept)}
    next_call = 1 + max((int(r.get("call_id", 0)) for r in records), default=0)
    budget = config.call_budget(config.count - len(kept))
    backend = make_backend(llm) if isinstance(llm, LLMConfig) else llm
    workers = min(config.concurrency, getattr(backend, "max_concurrency", config.concurrency))
    scenes: dict[str, dict] = getattr(backend, "scenes", {})  # prompt -> the scene it was built from, if any
    log.info("generating %d prompts for skill %r with %s", config.count - len(kept), skill.name, backend.label)

    def submit(pool: ThreadPoolExecutor, call_id: int) -> Future:
        seed = call_seed(config.seed, skill.name, call_id)
        rng = random.Random(seed)
        candidates = [*skill.examples, *kept]
        examples = rng.sample(candidates, min(config.examples_per_call, len(candidates)))
        request = build_request(skill, examples, config.prompts_per_call, seed, call_id)
        return pool.submit(backend.complete, request)

    owns_backend = isinstance(llm, LLMConfig)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="selma-llm")
    in_flight: list[tuple[int, Future]] = []
    finished = False
    try:
        issued = 0
        while len(kept) < config.count and (in_flight or issued < budget):
            while len(in_flight) < workers and issued < budget:
                in_flight.append((next_call, submit(pool, next_call)))
                next_call += 1
                issued += 1
            call_id, future = in_flight.pop(0)
            result.calls += 1
            try:
                answer = parse_numbered_list(future.result(), skill.word_limit)
            except MalformedAnswer as e:  # one bad answer costs a call, not the run
                log.warning("call %d: %s", call_id, e)
                result.failed_calls += 1
                continue
            result.malformed_lines += answer.malformed
            result.too_long += answer.too_long
            new_records = []
            for text in answer.prompts:
                if len(kept) >= config.count:
                    break
                result.candidates += 1
                key = _normalise(text)
                keep, score = (False, 1.0) if key in seen else diversity.offer(text)
                if not keep:
                    result.rejected_similar += 1
                    continue
                seen.add(key)
                kept.append(text)
                record = {
                    "text": text,
                    "skill": skill.name,
                    "source": backend.label,
                    "max_rouge_l": score,
                    "call_id": call_id,
                    "seed": call_seed(config.seed, skill.name, call_id),
                }
                if text in scenes:  # the template backend's scene: exact DSG questions for evaluation
                    record["scene"] = scenes[text]
                new_records.append(record)
            append_jsonl(path, new_records)
            result.added += len(new_records)
            if on_progress is not None:
                on_progress(len(kept), config.count)
        finished = True
    finally:
        # On cancel or error, calls already running finish in the background and are dropped; don't wait.
        pool.shutdown(wait=finished, cancel_futures=True)
        if owns_backend and finished:
            backend.close()
    if not result.complete:
        log.warning(
            "skill %r: stopped at %d of %d prompts after the call budget of %d calls; the kept prompts are "
            "saved; rerun to continue, raise max_calls, or lower the count/raise the threshold",
            skill.name, len(kept), config.count, budget,
        )  # fmt: skip
    return result


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())
