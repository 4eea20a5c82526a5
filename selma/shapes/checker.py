"""The shapes world's programmatic answerer: `AnswererConfig(backend="programmatic", model="shapes")` once this
module is imported (it registers `check` with `selma.evaluation.answerer_factory`).

It finds the objects in the picture (`detect.find_objects`) and answers from the question's `spec`, which the
shapes grammars record for every entity (`check`: shape, colour, count, size when said; relations carry
`subject_check` / `object_check`). What each question means, read literally from its text:

- entity ('Is there a red circle?'): some object has that shape and colour;
- count ('Are there two red circles?'): exactly that many objects have that shape and colour;
- attribute ('Is the red circle small?'): at least `count` objects of that shape and colour have the attribute;
- relation ('Is the red circle to the left of the blue square?'): there are both, and every such pair holds the
  relation by their boxes (`world.relation_holds`).

`holds(objects, category, spec)` is that meaning on any list of objects, so the truth of a question about a drawn
`world.Scene` (`truth`) and the checker's answer about its picture use the same rules. P(yes) is 1.0 or 0.0: the
checker is exact on clean renders and has no calibrated doubt to report on noisy ones.

VQAScore's single question ('Does this figure show "<prompt>"?', no spec) is answered by reading the prompt back
with the world's grammar (`parse.parse_prompt`): P(yes) = 1.0 when every DSG question of that prompt holds, else
0.0. A prompt the grammar cannot read, and any question without a shapes `check` (one an LLM wrote), raise a
SelmaError: judge those with a VLM answerer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from ..errors import SelmaError
from ..evaluation.answerer import Answer
from ..evaluation.answerer_factory import register_checker
from ..evaluation.questions import scene_questions
from ..evaluation.scores import VQASCORE_QUESTION, Question
from ..llm.grammars.shapes import scene_of
from .detect import Found, find_objects
from .parse import parse_prompt
from .world import COLOURS, RELATIONS, SIZES, Scene, relation_holds

YES, NO = 1.0, 0.0
_PREFIX, _SUFFIX = VQASCORE_QUESTION.split("{prompt}")
_CACHE: dict[str, list[Found]] = {}
_CACHE_SIZE = 64


def truth(scene: Scene) -> list[Found]:
    """The objects of a drawn scene as the checker would ideally see them."""
    return [Found(o.shape, o.colour, o.size, o.box, 0.0) for o in scene.objects]


def _matching(objects: Sequence[Found], check: Mapping, **override: str) -> list[Found]:
    want = {"shape": check["shape"], "colour": check["colour"], **override}
    return [o for o in objects if all(getattr(o, k) == v for k, v in want.items())]


def _check(spec: Mapping, key: str, question: str) -> Mapping:
    if key not in spec:
        raise SelmaError(
            f"the shapes checker reads what a question is about from its spec ({key!r}); {question!r} has "
            "none, so it was not written from a shapes-world scene: answer it with a VLM answerer"
        )
    return spec[key]


def holds(objects: Sequence[Found], category: str, spec: Mapping, question: str = "") -> bool:
    """Whether a DSG question (its category and spec) is true of these objects."""
    if category == "relation":
        if "place" in spec or "object2" in spec or spec.get("relation") not in RELATIONS:
            raise SelmaError(f"the shapes checker knows only the relations {list(RELATIONS)}, not {question!r}")
        subjects = _matching(objects, _check(spec, "subject_check", question))
        targets = _matching(objects, _check(spec, "object_check", question))
        direction = RELATIONS[spec["relation"]]
        return bool(subjects and targets) and all(relation_holds(a.box, b.box, direction)
                                                  for a in subjects for b in targets)  # fmt: skip
    check = _check(spec, "check", question)
    if category == "entity":
        return bool(_matching(objects, check))
    if category == "count":
        return len(_matching(objects, check)) == int(spec["count"])
    if category == "attribute":
        value = spec["attribute"]
        key = "size" if value in SIZES else "colour" if value in COLOURS else None
        if key is None:
            raise SelmaError(f"the shapes checker knows sizes {SIZES} and colours, not the attribute {value!r}")
        return len(_matching(objects, check, **{key: value})) >= int(check.get("count", 1))
    raise SelmaError(f"the shapes checker cannot answer a {category!r} question ({question!r})")


def _seen(image) -> list[Found]:
    digest = hashlib.sha1(image.tobytes() + repr((image.mode, image.size)).encode()).hexdigest()
    if digest not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[digest] = find_objects(image)
    return _CACHE[digest]


def _summary(objects: Sequence[Found]) -> str:
    return ", ".join(f"{o.size} {o.colour} {o.shape}" for o in objects) or "nothing"


def prompt_holds(objects: Sequence[Found], prompt: str) -> bool:
    """Whether every DSG question of a shapes-world prompt (read back by the grammar) holds of the objects."""
    spec = parse_prompt(prompt)
    if spec is None:
        raise SelmaError(
            f"the shapes checker answers VQAScore only for prompts of the shapes world's grammar; {prompt!r} is "
            "not one: use a VLM answerer (backend = 'transformers', 'blip' or 'openai') for VQAScore"
        )
    return all(holds(objects, q.category, q.spec, q.text) for q in scene_questions(scene_of(spec)))


def check(image, question: Question) -> Answer:
    """Answer one question about one picture (the registered checker)."""
    objects = _seen(image)
    if not question.spec and question.text.startswith(_PREFIX) and question.text.endswith(_SUFFIX):
        ok = prompt_holds(objects, question.text[len(_PREFIX) : len(question.text) - len(_SUFFIX)])
    else:
        ok = holds(objects, question.category, question.spec, question.text)
    return Answer(YES if ok else NO, f"{'yes' if ok else 'no'} (seen: {_summary(objects)})")


register_checker("shapes", check)
