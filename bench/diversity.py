"""Benchmark: SELMA's ROUGE-L diversity filter against `rouge_score`, in the same run.

    python bench/diversity.py            # 3,000 prompts (rouge_score takes a few minutes)
    python bench/diversity.py --quick    # 300 prompts, a smoke run

Builds deterministic synthetic prompts with near-duplicates (one word changed, punctuation or case
changed, a word dropped), filters them incrementally with `rouge_score`'s scorer (the reference) and
with `selma.prompts.diversity.filter_diverse_scores`, and prints agreement, kept counts, times and the speed
ratio; then the time our filter takes for a 5,000-prompt skill.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: `bench` and `selma` importable

from rouge_score.rouge_scorer import RougeScorer  # noqa: E402

from bench.record import record  # noqa: E402
from selma.prompts.diversity import DEFAULT_THRESHOLD, filter_diverse_scores  # noqa: E402

COUNTS = ["a", "one", "two", "three", "a single", "a pair of", "several"]
ADJECTIVES = [
    "red", "blue", "green", "yellow", "wooden", "shiny", "tiny", "huge", "striped", "fluffy",
    "rusty", "glass", "golden", "ancient", "neon", "velvet", "paper", "marble", "frozen", "glowing",
]  # fmt: skip
NOUNS = [
    "cat", "dog", "teapot", "bicycle", "umbrella", "lantern", "robot", "giraffe", "sailboat", "violin",
    "cactus", "clock", "owl", "backpack", "pumpkin", "telescope", "armchair", "kite", "penguin", "candle",
]  # fmt: skip
RELATIONS = ["on top of", "next to", "under", "behind", "in front of", "to the left of", "inside", "beside"]
PLACES = [
    "a sunny kitchen", "a snowy forest", "a busy street", "the beach at dusk", "a library", "a desert",
    "a rooftop garden", "an old train station", "a foggy harbor", "a neon-lit alley",
]  # fmt: skip
STYLES = ["", "photo", "oil painting", "watercolor", "3D render", "pencil sketch", "pixel art", "studio lighting"]
SEEDS = [
    "Two red apples on a wooden table next to a glass of milk.",
    "A tiny robot reading a book under a lamp in a quiet library.",
    "Three penguins wearing scarves standing in front of an igloo at night.",
]


def fresh_prompt(rng: random.Random) -> str:
    """One compositional prompt: things, a spatial relation, a place, maybe a style."""
    subject = f"{rng.choice(COUNTS)} {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    other = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    text = f"{subject} {rng.choice(RELATIONS)} a {other} in {rng.choice(PLACES)}"
    if rng.random() < 0.4:
        text += f", with a {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} nearby"
    style = rng.choice(STYLES)
    text = text[0].upper() + text[1:] + (f", {style}." if style else ".")
    return text


def near_duplicate(rng: random.Random, text: str) -> str:
    """A copy of `text` with one small edit, the kind an LLM repeats itself with."""
    words = text.split()
    edit = rng.choice(("word", "punctuation", "case", "drop", "swap"))
    i = rng.randrange(len(words))
    if edit == "word":
        words[i] = rng.choice(ADJECTIVES + NOUNS)
    elif edit == "punctuation":
        return text.replace(",", ";").rstrip(".") + rng.choice(("!", "...", " .", ""))
    elif edit == "case":
        return rng.choice((text.upper(), text.lower(), text.title()))
    elif edit == "drop" and len(words) > 3:
        del words[i]
    else:
        j = rng.randrange(len(words))
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


def synthetic_prompts(n: int, seed: int = 0, duplicate_rate: float = 0.4) -> list[str]:
    """`n` prompts; about `duplicate_rate` of them are near-duplicates of an earlier one."""
    rng = random.Random(seed)
    prompts: list[str] = []
    while len(prompts) < n:
        if prompts and rng.random() < duplicate_rate:
            prompts.append(near_duplicate(rng, rng.choice(prompts)))
        else:
            prompts.append(fresh_prompt(rng))
    return prompts


def reference_filter(candidates: list[str], threshold: float, pool: list[str]) -> list[tuple[bool, float]]:
    """The incremental filter written with `rouge_score`: every candidate against the whole pool."""
    scorer = RougeScorer(["rougeL"], use_stemmer=False)
    pool = list(pool)
    results = []
    for text in candidates:
        best = max((scorer.score(p, text)["rougeL"].fmeasure for p in pool), default=0.0)
        keep = best <= threshold
        if keep:
            pool.append(text)
        results.append((keep, best))
    return results


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def bench_against_rouge_score(n: int, threshold: float) -> None:
    prompts = synthetic_prompts(n)
    for warm_up in (filter_diverse_scores, reference_filter):  # first-call costs are not what we compare
        warm_up(SEEDS, threshold, SEEDS)
    ours, t_ours = timed(filter_diverse_scores, prompts, threshold, SEEDS)
    ref, t_ref = timed(reference_filter, prompts, threshold, SEEDS)
    same_decision = sum(a[0] == b[0] for a, b in zip(ours, ref, strict=True))
    same_bits = sum(float(a[1]).hex() == float(b[1]).hex() for a, b in zip(ours, ref, strict=True))
    print(f"== ROUGE-L diversity filter: {n} synthetic prompts, threshold {threshold}, {len(SEEDS)} seeds ==")
    print(f"decisions that agree:      {same_decision}/{n}" + ("" if same_decision == n else "   <-- MISMATCH"))
    print(f"max scores bit-identical:  {same_bits}/{n}" + ("" if same_bits == n else "   <-- MISMATCH"))
    print(f"kept:                      rouge_score {sum(k for k, _ in ref)}, selma {sum(k for k, _ in ours)}")
    print(f"time:                      rouge_score {t_ref:.2f} s, selma {t_ours:.4f} s")
    print(f"speed-up:                  {t_ref / t_ours:.0f}x (goal >= 300x)")
    work = f"ROUGE-L diversity filter, {n} prompts ({same_decision}/{n} decisions agree): time"
    record("diversity", work, "rouge_score", t_ref, "selma", t_ours, "s", goal="<= 1/300")


def bench_large_skill(n: int, threshold: float) -> None:
    prompts = synthetic_prompts(n, seed=1)
    ours, t_ours = timed(filter_diverse_scores, prompts, threshold, SEEDS)
    print(f"selma, {n}-prompt skill:   {t_ours:.3f} s, kept {sum(k for k, _ in ours)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="prompts to filter with both implementations")
    parser.add_argument("--quick", action="store_true", help="smoke run: --n 300")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--latency", type=float, default=0.2, help="simulated LLM server latency (s)")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight for the throughput run")
    parser.add_argument("--llm-prompts", type=int, default=640, help="prompts to write in each throughput run")
    args = parser.parse_args(argv)
    n = 300 if args.quick else args.n

    bench_against_rouge_score(n, args.threshold)
    bench_large_skill(5000, args.threshold)

    print(f"\n== LLM prompt writing: local OpenAI-protocol server, {args.latency * 1000:.0f} ms latency ==")
    bench_llm_throughput(args.llm_prompts, args.latency, args.concurrency)


def bench_llm_throughput(prompts: int, latency: float, concurrency: int) -> None:
    """Prompts per second through the real openai client against a local server with a fixed latency:
    `concurrency` calls in flight against one at a time, in the same run."""
    import tempfile

    from selma.llm import LLMConfig
    from selma.prompts.generation import PromptGenConfig, generate_prompts
    from selma.prompts.skills import builtin_skill
    from selma.testing.fake_openai import FakeOpenAIServer

    skill = builtin_skill("everyday")
    rates = {}
    with FakeOpenAIServer(latency=latency) as server:
        llm = LLMConfig(backend="openai", model="fake-model", base_url=server.base_url, api_key_env="SELMA_BENCH_KEY")
        for workers in (1, concurrency):
            with tempfile.TemporaryDirectory() as run_dir:
                start = time.perf_counter()
                result = generate_prompts(skill, llm, run_dir, PromptGenConfig(count=prompts, concurrency=workers))
                seconds = time.perf_counter() - start
            rates[workers] = len(result.prompts) / seconds
            print(
                f"  concurrency {workers:2d}: {len(result.prompts)} prompts from {result.calls} calls in "
                f"{seconds:.2f} s = {rates[workers]:.0f} prompts/s"
            )
    print(f"  speed-up at {concurrency} concurrent: {rates[concurrency] / rates[1]:.1f}x (goal >= 6x)")
    work = f"LLM prompt writing, {prompts} prompts, {latency * 1000:.0f} ms server latency: prompts/s"
    ours = f"{concurrency} in flight"
    record("diversity", work, "one call at a time", rates[1], ours, rates[concurrency], "prompts/s", goal=">= 6")


if __name__ == "__main__":
    main()
