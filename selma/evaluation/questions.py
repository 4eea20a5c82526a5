"""DSG questions: a prompt -> its Davidsonian scene graph, atomic yes/no questions with categories and parents.

An LLM backend (openai-compatible or transformers) writes them from DSG-style in-context examples, one line per
question: `id | category | question | parent ids` (0 = no parent). Prompts the offline template backend wrote
carry the scene they were built from (`scene` in their record), and their questions are derived from it exactly,
with no LLM call; for any other text the template backend cannot write questions, and says so.

Questions are cached per skill in RUN_DIR/evaluation/questions/<skill>.jsonl (one record per prompt), so a
rerun asks the LLM nothing it has asked before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..atomic_files import append_jsonl, read_jsonl
from ..errors import MalformedAnswer, SelmaError
from ..llm import LLMConfig, LLMRequest, make_backend
from ..llm.base import SkillSpec
from .scores import CATEGORIES, Question, check_graph

SYSTEM_MESSAGE = (
    "You turn a text-to-image prompt into its Davidsonian scene graph: the atomic yes/no questions that an image "
    "must all pass to show the prompt. One line per question: id | category | question | parent ids. Categories: "
    f"{', '.join(CATEGORIES)}. A question's parents are the questions it presupposes (0 = none): an attribute, "
    "count or relation question depends on the entity questions it is about. Ask only what the prompt says."
)

EXAMPLES = (
    (
        "three red apples on a wooden table",
        "1 | entity | Is there an apple? | 0\n"
        "2 | count | Are there three apples? | 1\n"
        "3 | attribute | Are the apples red? | 1\n"
        "4 | entity | Is there a table? | 0\n"
        "5 | attribute | Is the table wooden? | 4\n"
        "6 | relation | Are the apples on the table? | 1,4",
    ),
    (
        "a blue cup to the left of a green book",
        "1 | entity | Is there a cup? | 0\n"
        "2 | attribute | Is the cup blue? | 1\n"
        "3 | entity | Is there a book? | 0\n"
        "4 | attribute | Is the book green? | 3\n"
        "5 | relation | Is the cup to the left of the book? | 1,3",
    ),
    (
        'a neon sign that says "OPEN" above a door, at night',
        "1 | entity | Is there a sign? | 0\n"
        "2 | attribute | Is the sign a neon sign? | 1\n"
        '3 | text | Does the sign say "OPEN"? | 1\n'
        "4 | entity | Is there a door? | 0\n"
        "5 | relation | Is the sign above the door? | 1,4\n"
        "6 | global | Is it night? | 0",
    ),
)

_LINE_RE = re.compile(r"^\s*(\d+)\s*[|.)]\s*([a-z]+)\s*\|\s*(.+?)\s*\|\s*([\d,\s]*)\s*$", re.I)
QuestionFn = Callable[[Mapping], list[Question]]


@dataclass(frozen=True)
class PromptSkill:
    """The SkillSpec of prompts that come without a Skill (`selma eval` on a prompt file, the Evaluate node)."""

    name: str
    description: str = "prompts to evaluate"
    examples: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    word_limit: int = 0
    grammar: str = "everyday"


def questions_path(eval_dir: str | Path, skill_name: str) -> Path:
    """EVAL_DIR/questions/<skill>.jsonl; EVAL_DIR is RUN_DIR/evaluation in a run."""
    return Path(eval_dir) / "questions" / f"{skill_name}.jsonl"


def parse_questions(text: str) -> list[Question]:
    """Questions from an LLM answer; lines that are not `id | category | question | parents` are skipped, and a
    parent that does not exist (or comes later) is dropped rather than failing the prompt."""
    questions: list[Question] = []
    for line in text.splitlines():
        match = _LINE_RE.match(line)
        if not match or match.group(2).lower() not in CATEGORIES:
            continue
        qid = int(match.group(1))
        if any(q.id == qid for q in questions):
            continue
        known = {q.id for q in questions}
        parents = tuple(int(p) for p in re.findall(r"\d+", match.group(4)) if int(p) in known)
        questions.append(Question(qid, match.group(2).lower(), match.group(3).strip(), parents))
    if not questions:
        raise MalformedAnswer(
            f"the LLM wrote no question in the `id | category | question | parents` form: {text[:200]!r}"
        )
    check_graph(questions)
    return questions


def build_question_request(skill: SkillSpec, prompt: str, seed: int, call_id: int) -> LLMRequest:
    messages = [{"role": "system", "content": SYSTEM_MESSAGE}]
    for example, answer in EXAMPLES:
        messages += [{"role": "user", "content": example}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": prompt})
    completion = (
        SYSTEM_MESSAGE + "\n\n" + "".join(f"Prompt: {p}\n{a}\n\n" for p, a in EXAMPLES) + f"Prompt: {prompt}\n"
    )
    return LLMRequest(tuple(messages), completion, skill, (), 0, seed, call_id, task="questions")


def scene_questions(scene: Mapping) -> list[Question]:
    """Exact questions from the scene a template grammar recorded (`selma.llm.grammars.scene` builds it):
    {"entities": [{"noun", "plural", "count", "count_word", "attributes", "number"}], "relations": [{"subject",
    "relation", "object", "object2"}], "places": [{"subject", "place"}], "text": [...], "global": [...]} (indices
    into entities; every key optional but "noun"). An entity's "number" is "plural" for an uncounted plural ("Are
    there boots?") or "mass" ("Is there pasta?"); "object2" is the second object of a relation such as "between";
    a place is a phrase said of one entity ("Is the mug on a wooden desk?"). An entity's optional "check" (what a
    programmatic checker needs, e.g. the shapes world's shape and colour) goes into the spec of its questions, as
    "subject_check"/"object_check"/"object2_check" in a relation's."""
    questions: list[Question] = []
    entities = scene.get("entities", ())

    def checks(**roles: int) -> dict:
        return {f"{r}_check": entities[i]["check"] for r, i in roles.items() if "check" in entities[i]}

    def add(category: str, wording: str, parents: tuple[int, ...] = (), /, **spec) -> int:
        questions.append(Question(len(questions) + 1, category, wording, parents, spec))
        return len(questions)

    def subject(entity: Mapping) -> str:  # "Is the cup" / "Are the apples"
        if int(entity.get("count", 1)) == 1 and entity.get("number") != "plural":
            return f"Is the {entity['noun']}"
        return f"Are the {entity.get('plural') or entity['noun']}"

    def target(entity: Mapping) -> str:  # "the table" (a counted object keeps its noun, as it always has)
        return f"the {entity.get('plural') or entity['noun'] if entity.get('number') == 'plural' else entity['noun']}"

    entity_ids = []
    for index, entity in enumerate(entities):
        noun, plural = entity["noun"], entity.get("plural") or entity["noun"]
        own = {"check": entity["check"]} if "check" in entity else {}
        article = "an" if noun[:1].lower() in "aeiou" else "a"
        there = {"plural": f"Are there {plural}?", "mass": f"Is there {noun}?"}.get(entity.get("number", ""))
        eid = add("entity", there or f"Is there {article} {noun}?", entity=index, **own)
        entity_ids.append(eid)
        count = int(entity.get("count", 1))
        if count != 1:
            add("count", f"Are there {entity.get('count_word', count)} {plural}?", (eid,), entity=index, count=count,
                **own)  # fmt: skip
        for attribute in entity.get("attributes", ()):
            add("attribute", f"{subject(entity)} {attribute}?", (eid,), entity=index, attribute=attribute, **own)
    for relation in scene.get("relations", ()):
        a, b, c = relation["subject"], relation["object"], relation.get("object2")
        text = f"{subject(entities[a])} {relation['relation']} {target(entities[b])}"
        if c is None:
            add("relation", text + "?", (entity_ids[a], entity_ids[b]), subject=a, object=b,
                relation=relation["relation"], **checks(subject=a, object=b))  # fmt: skip
        else:
            add("relation", f"{text} and {target(entities[c])}?", (entity_ids[a], entity_ids[b], entity_ids[c]),
                subject=a, object=b, object2=c, relation=relation["relation"], **checks(subject=a, object=b,
                object2=c))  # fmt: skip
    for place in scene.get("places", ()):
        a = place["subject"]
        add("relation", f"{subject(scene['entities'][a])} {place['place']}?", (entity_ids[a],), subject=a,
            place=place["place"])  # fmt: skip
    for text in scene.get("text", ()):
        add("text", f'Does the image show the text "{text}"?', text=text)
    for item in scene.get("global", ()):
        add("global", f"Is it {item}?", value=item)
    if not questions:
        raise ValueError(f"the recorded scene {dict(scene)!r} has nothing to ask about")
    return questions


class QuestionWriter:
    """Questions for prompt records, from the cache, the recorded scene, or the LLM (in that order)."""

    def __init__(self, llm: LLMConfig | None, cache_path: str | Path, *, seed: int = 0):
        self.llm = llm or LLMConfig()
        self.cache_path = Path(cache_path)
        self.seed = seed
        self._cache = {
            r["prompt"]: [Question.from_json(q) for q in r["questions"]] for r in read_jsonl(self.cache_path)
        }
        self._backend = None
        self.llm_calls = 0

    def questions(self, skill: SkillSpec, records: Sequence[Mapping]) -> dict[str, list[Question]]:
        """prompt -> its questions for every record ({"prompt": ..., optional "scene": ...})."""
        new = []
        for call_id, record in enumerate(records):
            prompt = record["prompt"]
            if prompt in self._cache:
                continue
            if record.get("scene"):
                questions, source = scene_questions(record["scene"]), "scene"
            else:
                questions, source = self._ask(skill, prompt, call_id), self.llm.label
            self._cache[prompt] = questions
            new.append({"prompt": prompt, "source": source, "questions": [q.to_json() for q in questions]})
        append_jsonl(self.cache_path, new)
        return {r["prompt"]: self._cache[r["prompt"]] for r in records}

    def _ask(self, skill: SkillSpec, prompt: str, call_id: int) -> list[Question]:
        if self.llm.backend == "template":
            raise SelmaError(
                f"the offline template backend writes DSG questions only for prompts it generated itself (they "
                f"carry their scene); {prompt!r} has none. Use an LLM for the questions: [evaluate] llm = "
                "{backend = 'openai', model = ...} or {backend = 'transformers', model = 'path/to/llm'}"
            )
        if self._backend is None:
            self._backend = make_backend(self.llm)
        self.llm_calls += 1
        return parse_questions(self._backend.complete(build_question_request(skill, prompt, self.seed, call_id)))

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
