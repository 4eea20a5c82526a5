"""The evaluation's arithmetic on hand-made answers: DSG's dependency rule, VQAScore's question, CLIPScore's
formula, bootstrap intervals, paired differences, the scoreboard files and the answer cache."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from selma.evaluation.answer_cache import AnswerCache, image_hash
from selma.evaluation.answerer import Answer
from selma.evaluation.questions import parse_questions, scene_questions
from selma.evaluation.scoreboard import ItemScore, build_scoreboard, write_scoreboard
from selma.evaluation.scores import Question, check_graph, clip_score, dsg_score, vqascore_question
from selma.evaluation.statistics import bootstrap, paired_difference

APPLES = [
    Question(1, "entity", "Is there an apple?"),
    Question(2, "count", "Are there three apples?", (1,)),
    Question(3, "attribute", "Are the apples red?", (1,)),
    Question(4, "entity", "Is there a table?"),
    Question(5, "relation", "Are the apples on the table?", (1, 4)),
]


def test_dsg_is_the_share_of_yes_answers():
    assert dsg_score(APPLES, {1: 0.9, 2: 0.8, 3: 0.1, 4: 0.7, 5: 0.6}) == pytest.approx(4 / 5)


def test_dsg_counts_a_question_as_no_when_a_parent_is_no():
    # no apple: "three apples", "red apples", "apples on the table" cannot pass, whatever the VQA said
    assert dsg_score(APPLES, {1: 0.2, 2: 0.9, 3: 0.9, 4: 0.9, 5: 0.9}) == pytest.approx(1 / 5)
    # no table: only the relation falls with it
    assert dsg_score(APPLES, {1: 0.9, 2: 0.9, 3: 0.9, 4: 0.4, 5: 0.9}) == pytest.approx(3 / 5)


def test_dsg_dependency_is_transitive():
    chain = [Question(1, "entity", "a?"), Question(2, "attribute", "b?", (1,)), Question(3, "attribute", "c?", (2,))]
    assert dsg_score(chain, {1: 0.1, 2: 0.2, 3: 0.99}) == 0.0
    assert dsg_score(chain, {1: 0.9, 2: 0.2, 3: 0.99}) == pytest.approx(1 / 3)


def test_dsg_errors_name_the_problem():
    with pytest.raises(ValueError, match="question 5 .* has no answer"):
        dsg_score(APPLES, {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0})
    with pytest.raises(ValueError, match="depends on \\[7\\]"):
        check_graph([Question(1, "entity", "x?", (7,))])
    with pytest.raises(ValueError, match="at least one DSG question"):
        dsg_score([], {})
    with pytest.raises(ValueError, match="category 'colour'"):
        Question(1, "colour", "red?")


def test_vqascore_asks_lin_et_al_question_and_clipscore_is_hessel_formula():
    assert vqascore_question(" two cats ").text == 'Does this figure show "two cats"? Please answer yes or no.'
    assert clip_score(0.31) == pytest.approx(0.775)
    assert clip_score(-0.2) == 0.0


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, large = bootstrap(rng.random(10).tolist()), bootstrap(rng.random(1000).tolist())
    assert small.low <= small.mean <= small.high and large.low <= large.mean <= large.high
    assert large.high - large.low < small.high - small.low
    assert bootstrap([0.5]) == bootstrap([0.5]) and bootstrap([0.5]).low == bootstrap([0.5]).high == 0.5


def test_paired_difference_pairs_by_item():
    base = {"a": 0.2, "b": 0.4, "c": 0.6}
    expert = {"a": 0.3, "b": 0.5, "c": 0.7, "only-here": 0.0}
    diff = paired_difference(expert, base)
    assert diff.n == 3 and diff.mean == pytest.approx(0.1) and diff.low == pytest.approx(0.1)
    with pytest.raises(ValueError, match="no item was scored for both"):
        paired_difference({"x": 1.0}, {"y": 1.0})


def test_scoreboard_files(tmp_path):
    scores = [ItemScore("count", v, "dsg", f"p{i}", s) for v, off in (("merged", 0.2), ("base", 0.0))
              for i, s in enumerate(np.linspace(0.1, 0.5, 6) + off)]  # fmt: skip
    rows = build_scoreboard(scores)
    assert [r.variant for r in rows] == ["base", "merged"]  # base first whatever the input order
    assert rows[0].vs_base is None and rows[1].vs_base.mean == pytest.approx(0.2)
    paths = write_scoreboard(rows, tmp_path, "demo")
    data = json.loads(paths["json"].read_text())
    assert data["rows"][1]["vs_base"]["mean"] == pytest.approx(0.2) and data["rows"][1]["n"] == 6
    table = list(csv.DictReader(paths["csv"].open()))
    assert table[1]["variant"] == "merged" and float(table[1]["vs_base"]) == pytest.approx(0.2)
    assert "| count | merged | DSG | 6 |" in paths["md"].read_text()
    with Image.open(paths["png"]) as png:
        assert png.width > 100 and png.height > 100
    with pytest.raises(ValueError, match="nothing was scored"):
        write_scoreboard([], tmp_path)


class CountingAnswerer:
    label = "fake:counting"

    def __init__(self):
        self.pairs = 0

    def answer(self, images, questions):
        self.pairs += len(questions)
        return [Answer(0.75 if "red" in q.text else 0.25, "x") for q in questions]

    def close(self):
        pass


def test_the_answer_cache_asks_only_what_is_new(tmp_path):
    red, blue = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    items = [(img, image_hash(img), q, {"prompt": "p"}) for img in (red, blue) for q in APPLES[:3]]
    answerer = CountingAnswerer()
    first = AnswerCache(tmp_path / "answers.jsonl").ask(answerer, items, batch_size=4)
    assert answerer.pairs == 6 and [a.p_yes for a in first[:3]] == [0.25, 0.25, 0.75]
    again = AnswerCache(tmp_path / "answers.jsonl")
    assert again.ask(answerer, items) == first and answerer.pairs == 6 and again.calls == 0
    green = Image.new("RGB", (8, 8), "green")
    again.ask(answerer, [*items, (green, image_hash(green), APPLES[0], {})])
    assert answerer.pairs == 7 and again.calls == 1
    assert image_hash(red) == image_hash(Image.new("RGB", (8, 8), (255, 0, 0))) != image_hash(blue)
    record = json.loads((tmp_path / "answers.jsonl").read_text().splitlines()[0])
    assert set(record) == {"prompt", "image_sha256", "question", "answerer", "p_yes", "answer"}


def test_llm_questions_are_parsed_and_bad_parents_dropped():
    text = "Here you go:\n1 | entity | Is there a cat? | 0\n2 | attribute | Is the cat black? | 1\n" \
           "3 | relation | Is the cat on a mat? | 1, 9\nnot a question\n4 | colour | Is it red? | 0"  # fmt: skip
    questions = parse_questions(text)
    assert [(q.id, q.category, q.parents) for q in questions] == [(1, "entity", ()), (2, "attribute", (1,)),
                                                                  (3, "relation", (1,))]  # fmt: skip
    with pytest.raises(Exception, match="no question"):
        parse_questions("I cannot help with that.")


def test_scene_questions_are_exact():
    scene = {"entities": [{"noun": "apple", "plural": "apples", "count": 3, "count_word": "three",
                           "attributes": ["red"]}, {"noun": "table", "attributes": ["wooden"]}],
             "relations": [{"subject": 0, "relation": "on", "object": 1}]}  # fmt: skip
    questions = scene_questions(scene)
    assert [q.text for q in questions] == [
        "Is there an apple?",
        "Are there three apples?",
        "Are the apples red?",
        "Is there a table?",
        "Is the table wooden?",
        "Are the apples on the table?",
    ]
    assert questions[-1].parents == (1, 4) and questions[1].spec == {"entity": 0, "count": 3}
