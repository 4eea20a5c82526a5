"""The ROUGE-L diversity filter equals `rouge_score` to the bit: scores, tokens and keep decisions."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selma.prompts import diversity
from selma.prompts.diversity import DiversityFilter, filter_diverse, filter_diverse_scores, rouge_l_f, rouge_l_tokens

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
SCORER = rouge_scorer.RougeScorer(["rougeL"])


def reference_f(a: str, b: str) -> float:
    return float(SCORER.score(a, b)["rougeL"].fmeasure)


def reference_filter(candidates, threshold=0.8, pool=()):
    """The incremental filter written with `rouge_score`."""
    pool = list(pool)
    results = []
    for text in candidates:
        best = max((reference_f(p, text) for p in pool), default=0.0)
        if best <= threshold:
            pool.append(text)
        results.append((best <= threshold, best))
    return results


def same_bits(ours, ref) -> bool:
    return [(k, float(s).hex()) for k, s in ours] == [(k, float(s).hex()) for k, s in ref]


def words(n: int, vocab: int = 50, offset: int = 0) -> str:
    return " ".join(f"w{(i * 7 + offset) % vocab}" for i in range(n))


HARD_PAIRS = {
    "both empty": ("", ""),
    "one empty": ("", "a cat"),
    "punctuation only": ("!!! ... ---", "?,;:"),
    "punctuation vs text": ("...", "A cat."),
    "digits": ("3 cats and 42 dogs", "42 dogs, 3 cats"),
    "mixed case": ("A RED Cat", "a red cAT"),
    "dotted capital I": ("İstanbul at night", "istanbul at night"),
    "kelvin sign": ("\u212a9 engine", "k9 engine"),
    "accents split words": ("naïve café", "na ve caf"),
    "non-latin has no tokens": ("東京タワー", "ΣΑΣ Москва"),
    "underscores and dashes": ("x_y-z", "x y z"),
    "repeated tokens": ("a a a a a b", "a b a b a b a"),
    "identical": ("the same text", "the same text"),
    "no overlap": ("red apple", "blue sky"),
    "F = 4/5 exactly, rounds up": ("a b c d e", "a b c d x"),
    "F = 4/5 exactly, rounds to 0.8": ("a b", "a b c"),
    "long, 70 tokens": (words(70), words(70, offset=3)),
    "long, 64 vs 65 tokens": (words(64), words(65)),
    "long, 150 vs 130 tokens": (words(150, vocab=37), words(130, vocab=41)),
    "long vs short": (words(200), "w0 w7 w14"),
}


@pytest.mark.parametrize("a, b", HARD_PAIRS.values(), ids=HARD_PAIRS.keys())
def test_rouge_l_f_is_bit_identical_and_symmetric(a, b):
    assert rouge_l_f(a, b).hex() == reference_f(a, b).hex()
    assert rouge_l_f(b, a).hex() == rouge_l_f(a, b).hex() == reference_f(b, a).hex()


@pytest.mark.parametrize("a, b", HARD_PAIRS.values(), ids=HARD_PAIRS.keys())
def test_tokens_match_rouge_score(a, b):
    assert rouge_l_tokens(a) == SCORER._tokenizer.tokenize(a)
    assert rouge_l_tokens(b) == SCORER._tokenizer.tokenize(b)


PIECES = ["a", "cat", "Cat", "CAT", "dog", "the", "2", "42", "x1", "İ", "\u212a", "é", "東京", "ß", "", "red"]
SEPARATORS = [" ", "  ", ",", ", ", ".", "!", "-", "_", "\n", "'"]
texts = st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), max_size=80).map(
    lambda parts: "".join(p + s for p, s in parts)
)


@settings(max_examples=150, deadline=None)
@given(texts, texts)
def test_rouge_l_f_property(a, b):
    assert rouge_l_f(a, b).hex() == reference_f(a, b).hex()
    assert rouge_l_f(b, a).hex() == rouge_l_f(a, b).hex()


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_tokens_property_any_unicode(text):
    assert rouge_l_tokens(text) == SCORER._tokenizer.tokenize(text)


short_texts = st.lists(st.sampled_from(PIECES[:8] + ["red", "blue"]), max_size=6).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(short_texts, max_size=25),
    st.lists(short_texts, max_size=3),
    st.sampled_from([0.3, 0.5, 0.7, 0.8, 1.0]),
    st.sampled_from([1, 3, 256]),
)
def test_filter_property_matches_reference(candidates, pool, threshold, block):
    original, diversity._BLOCK = diversity._BLOCK, block  # small blocks cross block boundaries
    try:
        ours = filter_diverse_scores(candidates, threshold, pool)
    finally:
        diversity._BLOCK = original
    assert same_bits(ours, reference_filter(candidates, threshold, pool))


def near_duplicates(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    vocab = [f"t{i}" for i in range(300)] + ["a", "the", "of", "on"]
    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < 0.5:
            tokens = out[int(rng.integers(len(out)))].split()
            tokens[int(rng.integers(len(tokens)))] = str(rng.choice(vocab))
        else:
            tokens = [str(t) for t in rng.choice(vocab, size=int(rng.integers(3, 90)))]
        out.append(" ".join(tokens))
    return out


@functools.cache
def near_duplicates_reference(n: int, threshold: float) -> list[tuple[bool, float]]:
    candidates = near_duplicates(n)
    return reference_filter(candidates, threshold, candidates[:2])


@pytest.mark.parametrize("block", [1, 7, 256])
def test_filter_matches_reference_on_near_duplicates(block, monkeypatch):
    candidates = near_duplicates(80)
    monkeypatch.setattr(diversity, "_BLOCK", block)
    ours = filter_diverse_scores(candidates, 0.7, pool=candidates[:2])
    assert same_bits(ours, near_duplicates_reference(80, 0.7))
    assert 0 < sum(k for k, _ in ours) < len(candidates)


def test_vocab_past_the_last_code_point_falls_back_to_int_lists(monkeypatch):
    monkeypatch.setattr(diversity, "_LAST_CODE_POINT", 20)  # so most tokens get int codes
    candidates = near_duplicates(40)
    ours = filter_diverse_scores(candidates, 0.7, pool=["t1 t2 t3"])
    assert same_bits(ours, reference_filter(candidates, 0.7, ["t1 t2 t3"]))
    assert rouge_l_f(candidates[3], candidates[5]).hex() == reference_f(candidates[3], candidates[5]).hex()


def test_row_max_equals_max_of_the_full_matrix_bitwise():
    # Small lengths make many ties of equal ratios (1/4 == 2/8) with different roundings of f.
    rng = np.random.default_rng(1)
    len_pred, len_target = rng.integers(0, 12, 40), rng.integers(0, 12, 300)
    lcs = np.minimum(rng.integers(0, 12, (40, 300)), np.minimum.outer(len_pred, len_target))
    full = diversity._fmeasure_array(lcs, len_pred[:, None], len_target[None, :]).max(axis=1)
    assert diversity._row_max_fmeasure(lcs, len_pred, len_target).tobytes() == full.tobytes()
    for i, j in [(0, 0), (3, 17), (39, 299)]:  # the vectorised f is Python's f
        assert diversity._fmeasure_array(lcs[i, j], len_pred[i], len_target[j]) == diversity._fmeasure(
            int(lcs[i, j]), int(len_pred[i]), int(len_target[j])
        )


@pytest.mark.parametrize("threshold", [0, 0.0, -0.1, 1.0001, 2, math.nan, math.inf, "0.8", True, None])
def test_threshold_outside_0_1_is_rejected(threshold):
    with pytest.raises(ValueError, match=r"threshold=.* is outside \(0, 1\]"):
        DiversityFilter(threshold)
    with pytest.raises(ValueError, match=r"threshold=.* is outside \(0, 1\]"):
        filter_diverse(["a"], threshold=threshold)


def test_threshold_one_keeps_even_exact_duplicates():
    assert filter_diverse(["a cat", "a cat"], threshold=1.0) == [True, True]
    assert filter_diverse(["a cat", "a cat"], threshold=np.float64(0.99)) == [True, False]


def test_scores_exactly_at_the_threshold_follow_rouge_score_rounding():
    # Both pairs have ROUGE-L F = 4/5 exactly; rouge_score's float arithmetic rounds the first above 0.8.
    assert filter_diverse_scores(["a b c d x"], 0.8, pool=["a b c d e"]) == [(False, 0.8000000000000002)]
    assert filter_diverse_scores(["a b"], 0.8, pool=["a b c"]) == [(True, 0.8)]


def test_incremental_first_copy_kept_second_dropped():
    assert filter_diverse_scores(["A red cat.", "a red cat!"]) == [(True, 0.0), (False, 1.0)]


def test_pool_entries_are_not_tested_and_dropped_texts_do_not_join():
    f = DiversityFilter(0.8, pool=["a red cat on a mat", "a red cat on a mat"])
    assert len(f) == 2  # duplicates in the pool are taken as given
    assert f.offer("A red cat on a mat.") == (False, 1.0)
    assert len(f) == 2
    kept, score = f.offer("a blue dog under the table")
    assert kept and score == reference_f("a red cat on a mat", "a blue dog under the table")
    assert len(f) == 3
    f.add("a blue dog under a table")  # a single str is one text, not its characters
    f.add(["x y z", "x y z"])
    assert len(f) == 6
    assert f.offer("x y z") == (False, 1.0)


def test_empty_pool_scores_zero_and_empty_texts_are_never_similar():
    f = DiversityFilter()
    assert f.offer("anything at all") == (True, 0.0)
    # rouge_score gives 0 to a text without tokens, so such texts are always kept.
    assert filter_diverse_scores(["", "", "!!!"]) == reference_filter(["", "", "!!!"]) == [(True, 0.0)] * 3


def test_filter_diverse_accepts_iterables_and_mask_matches_scores():
    candidates = near_duplicates(30)
    mask = filter_diverse(iter(candidates), 0.6, pool=iter(candidates[:1]))
    assert mask == [k for k, _ in filter_diverse_scores(candidates, 0.6, candidates[:1])]
    assert filter_diverse([]) == []


def test_non_text_is_a_type_error():
    with pytest.raises(TypeError, match="expected a str, got int"):
        DiversityFilter().offer(3)
    with pytest.raises(TypeError, match="expected a str, got NoneType"):
        rouge_l_tokens(None)
