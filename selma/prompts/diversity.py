"""SELMA's prompt-diversity filter: ROUGE-L F-measure, bit-identical to `rouge_score`, but fast.

A candidate prompt is kept iff its maximum ROUGE-L F-measure against every prompt in the pool (the
skill's seed examples and the prompts kept so far) is <= the threshold; a kept prompt joins the pool
at once (SELMA uses 0.8, self-instruct 0.7).

Scores equal `RougeScorer(["rougeL"]).score(a, b)["rougeL"].fmeasure` to the bit:

- tokens are `rouge_score`'s default tokenizer without stemming: `text.lower()`, then the runs of
  ASCII `[a-z0-9]`; everything else (punctuation, non-ASCII letters) separates tokens;
- the LCS is over whole tokens; each distinct token becomes one Unicode code point, so a prompt becomes
  a short string and rapidfuzz's SIMD bit-parallel LCS (`process.cdist`) scores a block of candidates
  against the whole pool in one call;
- the F-measure repeats `rouge_score`'s float operations in the same order (`p = lcs/len(prediction)`,
  `r = lcs/len(target)`, `2*p*r/(p+r)`), vectorised in numpy float64, which rounds exactly like
  Python floats. The score is symmetric bit for bit (2*p is exact, so (2*p)*r == (2*r)*p), so it does
  not matter which text is the target.
"""

from __future__ import annotations

import logging
import numbers
import re
import time
from collections.abc import Iterable

import numpy as np
from rapidfuzz.distance import LCSseq
from rapidfuzz.process import cdist

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.8
# rouge_score substitutes `[^a-z0-9]+` with a space and splits on whitespace, which leaves exactly
# the runs of ASCII [a-z0-9] in the lower-cased text (lower() can create ASCII: 'İ' -> 'i̇', 'K' -> 'k').
_TOKEN_RE = re.compile(r"[a-z0-9]+")
# Token codes are code points; the UTF-16 surrogates are skipped (rapidfuzz would not mind, but such
# strings cannot be printed or encoded while debugging). Past the last code point, codes become ints
# and a prompt a list of ints, which rapidfuzz compares element by element just the same.
_SURROGATES = range(0xD800, 0xE000)
_LAST_CODE_POINT = 0x10FFFF
# Candidates scored against the pool per cdist call: large enough for SIMD and few numpy calls, small
# enough that the wasted upper triangle of the block-vs-block scores stays cheap.
_BLOCK = 256
# `_row_max_fmeasure` relies on ratios of token counts staying far above float rounding; past this many
# tokens in a pair of texts (never, for prompts) it computes every F-measure instead.
_TIES_EXACT_BELOW = 1 << 20


def rouge_l_tokens(text: str) -> list[str]:
    """Tokens exactly as `rouge_score`'s default tokenizer (no stemming) makes them."""
    if not isinstance(text, str):
        raise TypeError(f"ROUGE-L scores text: expected a str, got {type(text).__name__} ({text!r:.80})")
    return _TOKEN_RE.findall(text.lower())


def _fmeasure(lcs: int, len_prediction: int, len_target: int) -> float:
    # rouge_scorer._score_lcs + scoring.fmeasure, operation for operation.
    if not len_prediction or not len_target:
        return 0.0
    precision = lcs / len_prediction
    recall = lcs / len_target
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def rouge_l_f(a: str, b: str) -> float:
    """ROUGE-L F-measure of two texts, equal to `RougeScorer(["rougeL"]).score(a, b)["rougeL"].fmeasure`
    to the bit (symmetric: `rouge_l_f(a, b) == rouge_l_f(b, a)`)."""
    vocab = _Vocab()
    target, prediction = vocab.encode(rouge_l_tokens(a)), vocab.encode(rouge_l_tokens(b))
    return _fmeasure(LCSseq.similarity(target, prediction), len(prediction), len(target))


def _fmeasure_array(lcs: np.ndarray, len_prediction: np.ndarray, len_target: np.ndarray) -> np.ndarray:
    """`_fmeasure` elementwise over broadcastable arrays, with the same float operations in the same order.

    A zero length always comes with a zero LCS, so dividing by max(len, 1) gives p = r = 0 and f = 0,
    as `rouge_score` returns for an empty text."""
    precision = lcs / np.maximum(len_prediction, 1)
    recall = lcs / np.maximum(len_target, 1)
    numerator = 2 * precision * recall  # (2*p)*r, as Python evaluates it
    denominator = precision + recall
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _row_max_fmeasure(lcs: np.ndarray, len_prediction: np.ndarray, len_target: np.ndarray) -> np.ndarray:
    """Row maxima of the F-measure matrix (rows: predictions, columns: targets), bit-exact, computing
    `_fmeasure_array` only where a row's maximum can be.

    Mathematically f = 2*lcs/(m+n). lcs/(m+n) is one correctly rounded division, so two entries get
    the same float iff they are the same rational, and distinct rationals keep their order (they differ
    by at least 1/((m1+n1)*(m2+n2)), far above the rounding). The exact f is within a few ulps of
    2*lcs/(m+n), so it keeps the order of distinct rationals too; but equal rationals (say 1/4 and
    2/8) may round to different f. Hence: the exact f of the entries that tie for a row's largest
    ratio, and their maximum: about a third of the numpy work of the whole matrix."""
    if len_prediction.max(initial=0) + len_target.max(initial=0) > _TIES_EXACT_BELOW:
        return _fmeasure_array(lcs, len_prediction[:, None], len_target[None, :]).max(axis=1)
    ratio = lcs / np.maximum(len_prediction[:, None] + len_target[None, :], 1)
    best_ratio = ratio.max(axis=1, initial=0.0)
    best = np.zeros(len(lcs))
    live = np.flatnonzero(best_ratio > 0)  # a zero ratio means lcs == 0 in the whole row: f = 0
    if len(live) == 0:
        return best
    if len(live) < len(lcs):
        ratio = ratio[live]
    rows, cols = np.nonzero(ratio == best_ratio[live, None])
    rows = live[rows]  # sorted, and every live row has at least one entry
    f = _fmeasure_array(lcs[rows, cols], len_prediction[rows], len_target[cols])
    starts = np.flatnonzero(np.diff(rows, prepend=-1))
    best[rows[starts]] = np.maximum.reduceat(f, starts)
    return best


class _Vocab:
    """Maps each distinct token to one code (a 1-character str, or an int past the last code point)."""

    def __init__(self) -> None:
        self._codes: dict[str, str | int] = {}

    def encode(self, tokens: list[str]) -> str | list[int]:
        codes = self._codes
        for token in tokens:
            if token not in codes:
                n = len(codes)
                code_point = n if n < _SURROGATES.start else n + len(_SURROGATES)
                codes[token] = chr(code_point) if code_point <= _LAST_CODE_POINT else code_point
        chars = [codes[t] for t in tokens]
        try:
            return "".join(chars)
        except TypeError:  # over a million distinct tokens: fall back to a list of ints
            return [c if isinstance(c, int) else ord(c) for c in chars]


class DiversityFilter:
    """Incremental ROUGE-L diversity filter: `offer` keeps a text iff its maximum ROUGE-L F-measure
    against the pool is <= `threshold`, and a kept text joins the pool at once.

    `pool` (e.g. the skill's seed examples) and `add` put texts into the pool without testing them.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, pool: Iterable[str] = ()) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold <= 1:
            raise ValueError(
                f"DiversityFilter threshold={threshold!r} is outside (0, 1]; it is the highest ROUGE-L "
                "F-measure a kept prompt may have against the pool (SELMA uses 0.8, self-instruct 0.7)"
            )
        self.threshold = float(threshold)
        self._vocab = _Vocab()
        self._seqs: list[str | list[int]] = []
        self._lens = np.zeros(64, dtype=np.int64)  # token counts of self._seqs; grows by doubling
        self.add(pool)

    def __len__(self) -> int:
        return len(self._seqs)

    def add(self, texts: Iterable[str]) -> None:
        """Put texts into the pool without testing them."""
        for text in [texts] if isinstance(texts, str) else texts:
            self._append(self._vocab.encode(rouge_l_tokens(text)))

    def offer(self, text: str) -> tuple[bool, float]:
        """Test one text: (kept, maximum ROUGE-L F against the pool, 0.0 for an empty pool)."""
        return self.offer_many([text])[0]

    def offer_many(self, texts: Iterable[str]) -> list[tuple[bool, float]]:
        """`offer` each text in turn (a kept one joins the pool before the next is tested), scored in
        blocks: each block against the pool in one call, then against itself."""
        started = time.perf_counter()
        seqs = [self._vocab.encode(rouge_l_tokens(t)) for t in ([texts] if isinstance(texts, str) else texts)]
        results: list[tuple[bool, float]] = []
        for start in range(0, len(seqs), _BLOCK):
            results.extend(self._offer_block(seqs[start : start + _BLOCK]))
        seconds = time.perf_counter() - started
        kept = sum(k for k, _ in results)
        logger.debug("diversity: kept %d of %d (pool now %d) in %.3f s", kept, len(seqs), len(self), seconds)
        return results

    def _append(self, seq: str | list[int]) -> None:
        n = len(self._seqs)
        if n == len(self._lens):
            self._lens = np.concatenate([self._lens, np.zeros_like(self._lens)])
        self._lens[n] = len(seq)
        self._seqs.append(seq)

    def _offer_block(self, block: list[str | list[int]]) -> list[tuple[bool, float]]:
        n_pool = len(self._seqs)
        block_lens = np.array([len(s) for s in block], dtype=np.int64)
        # One thread: at a few thousand prompts threads did not pay for themselves (and numpy is serial).
        lcs = cdist(block, self._seqs + block, scorer=LCSseq.similarity, workers=1)
        # best[i]: max score of block[i] against the pool and the block texts kept before it.
        best = _row_max_fmeasure(lcs[:, :n_pool], block_lens, self._lens[:n_pool])
        within = _fmeasure_array(lcs[:, n_pool:], block_lens[:, None], block_lens[None, :])
        results = []
        for i, seq in enumerate(block):
            score = float(best[i])
            keep = score <= self.threshold
            if keep:
                self._append(seq)
                np.maximum(best, within[:, i], out=best)  # rows <= i are decided already
            results.append((keep, score))
        return results


def filter_diverse_scores(
    candidates: Iterable[str], threshold: float = DEFAULT_THRESHOLD, pool: Iterable[str] = ()
) -> list[tuple[bool, float]]:
    """(kept, max ROUGE-L F against the pool and the earlier kept candidates) for each candidate."""
    return DiversityFilter(threshold, pool).offer_many(candidates)


def filter_diverse(
    candidates: Iterable[str], threshold: float = DEFAULT_THRESHOLD, pool: Iterable[str] = ()
) -> list[bool]:
    """Keep mask of the incremental ROUGE-L filter: a candidate is kept iff its maximum score against
    `pool` and the candidates kept before it is <= `threshold`."""
    return [keep for keep, _ in filter_diverse_scores(candidates, threshold, pool)]


__all__ = [
    "DEFAULT_THRESHOLD",
    "DiversityFilter",
    "filter_diverse",
    "filter_diverse_scores",
    "rouge_l_f",
    "rouge_l_tokens",
]
