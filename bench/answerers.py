"""Benchmark: the chat-VLM answerer one pair per forward pass against batches of 8, in the same run.

    python bench/answerers.py               # 64 (image, question) pairs on the tiny random LLaVA, CPU
    python bench/answerers.py --pairs 512   # steadier rates
    python bench/answerers.py --device cuda --model FOLDER_OR_HUB_ID   # a real VLM on a GPU

Builds `selma.testing.tiny_vlms.build_tiny_chat_vlm` in a temporary folder (unless --model names one), loads
it twice through `make_answerer` (batch_size 1 and 8), warms each up on a few pairs, then answers the same
pairs with each: images of a few sizes and DSG-style questions of different lengths, so batches are padded.
Prints answers per second for both, the ratio batch8/batch1, and the largest P(yes) difference between them.
The tiny model is 2 layers x 32 wide: a forward pass costs little more than its per-call overhead, so the
ratio says how much of that overhead batching removes, not what a 7B model gains on a GPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: `bench` and `selma` importable

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.record import record  # noqa: E402
from selma.evaluation.answerer import AnswererConfig  # noqa: E402
from selma.evaluation.answerer_factory import make_answerer  # noqa: E402
from selma.evaluation.scores import Question  # noqa: E402

SUBJECTS = ["cat", "dog", "red car", "wooden table", "two birds", "blue umbrella", "tall tree", "glass of water"]
TEMPLATES = [
    "Is there a {s}?",
    "Is the {s} on the left of the image?",
    "Is the {s} next to a small green lamp on a table?",
    'Does this figure show "a {s} in a sunny kitchen, photo"? Please answer yes or no.',
]


def pairs(n: int, seed: int = 0) -> tuple[list[Image.Image], list[Question]]:
    rng = np.random.default_rng(seed)
    images = [Image.fromarray(rng.integers(0, 256, (24 + 8 * (i % 3), 32, 3), dtype=np.uint8)) for i in range(n)]
    texts = [TEMPLATES[i % len(TEMPLATES)].format(s=SUBJECTS[i % len(SUBJECTS)]) for i in range(n)]
    return images, [Question(i, "entity", t) for i, t in enumerate(texts)]


def rate(answerer, images, questions) -> tuple[float, list[float]]:
    answerer.answer(images[:8], questions[:8])  # warm-up: first-call costs are not what we compare
    start = time.perf_counter()
    answers = answerer.answer(images, questions)
    return len(answers) / (time.perf_counter() - start), [a.p_yes for a in answers]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=64, help="(image, question) pairs to answer per setting")
    parser.add_argument("--batch", type=int, default=8, help="the batched setting's batch_size")
    parser.add_argument("--model", default="", help="a chat VLM folder or hub id (default: the tiny LLaVA)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda, ...")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="selma-bench-vlm-") as tmp:
        model = args.model
        if not model:
            from selma.testing.tiny_vlms import build_tiny_chat_vlm

            model = str(build_tiny_chat_vlm(Path(tmp) / "tiny-llava"))
        images, questions = pairs(args.pairs)
        rates, p_yes = {}, {}
        for batch in (1, args.batch):
            config = AnswererConfig(backend="transformers", model=model, device=args.device, batch_size=batch)
            answerer = make_answerer(config)
            rates[batch], p_yes[batch] = rate(answerer, images, questions)
            answerer.close()

    where = f"{args.device}, {torch.get_num_threads()} torch threads" if args.device == "cpu" else args.device
    print(f"== VLM answerer: {args.pairs} pairs, {args.model or 'tiny random LLaVA'}, {where} ==")
    for batch in (1, args.batch):
        print(f"  batch {batch:2d}: {rates[batch]:8.1f} answers/s")
    print(f"  batch{args.batch}/batch1:  {rates[args.batch] / rates[1]:.1f}x")
    work = f"VLM answerer, {args.pairs} pairs, {args.model or 'tiny random LLaVA'}, {where}: answers/s"
    record("answerers", work, "batch 1", rates[1], f"batch {args.batch}", rates[args.batch], "answers/s")
    gap = max(abs(a - b) for a, b in zip(p_yes[1], p_yes[args.batch], strict=True))
    print(f"  max |P(yes) batch{args.batch} - batch1|: {gap:.1e}" + ("" if gap <= 1e-5 else "   <-- MISMATCH"))


if __name__ == "__main__":
    main()
