"""Skills: what one expert should learn, described the way SELMA prompts its LLM.

A skill is a name, a one-sentence description, numbered rules, a word limit and three (or more) seed
examples. The built-in library lives in `skill_library/*.json`; users add their own from a JSON file
or from node inputs. Every loader goes through `Skill.__post_init__`, so the errors are the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

LIBRARY_DIR = Path(__file__).parent / "skill_library"
TEMPLATE_GRAMMARS = (
    "counting", "spatial", "text", "attribute", "everyday", "paragraph", "art", "whoops",
    "shapes_counting", "shapes_spatial", "shapes_colour",
)  # fmt: skip
MIN_SEEDS = 3
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Skill:
    name: str = field(metadata={"help": "file-safe id: lower-case letters, digits, '_' or '-'"})
    description: str = field(metadata={"help": "one sentence: what prompts of this skill teach"})
    examples: tuple[str, ...] = field(metadata={"help": f"at least {MIN_SEEDS} seed prompts, written by hand"})
    rules: tuple[str, ...] = ()
    word_limit: int = 30
    grammar: str = field(default="everyday", metadata={"help": f"offline template grammar: {TEMPLATE_GRAMMARS}"})

    def __post_init__(self) -> None:
        if isinstance(self.examples, str) or isinstance(self.rules, str):
            raise ValueError(
                f"Skill {self.name!r}: examples and rules must be lists of strings, not one string; "
                "pass e.g. examples=['first prompt', 'second prompt', 'third prompt']"
            )
        object.__setattr__(self, "examples", tuple(str(e).strip() for e in self.examples if str(e).strip()))
        object.__setattr__(self, "rules", tuple(str(r).strip() for r in self.rules if str(r).strip()))
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(
                f"Skill.name={self.name!r} is not a valid skill name; use 1-64 lower-case letters, digits, "
                "'_' or '-' (it becomes a file name), e.g. 'counting'"
            )
        if not isinstance(self.description, str) or not self.description.strip():
            raise ValueError(f"Skill {self.name!r}: description is empty; say in one sentence what it teaches")
        if len(set(self.examples)) < MIN_SEEDS:
            raise ValueError(
                f"Skill {self.name!r}: {len(set(self.examples))} distinct seed example(s) given; "
                f"write at least {MIN_SEEDS} example prompts (SELMA shows the LLM three per call)"
            )
        if not _is_int(self.word_limit) or not 5 <= self.word_limit <= 200:
            raise ValueError(f"Skill {self.name!r}: word_limit={self.word_limit!r} is outside 5..200 (an integer)")
        too_long = [e for e in self.examples if len(e.split()) > self.word_limit]
        if too_long:
            raise ValueError(
                f"Skill {self.name!r}: seed example {too_long[0]!r} has {len(too_long[0].split())} words, over "
                f"the word_limit of {self.word_limit}; shorten it or raise word_limit"
            )
        if self.grammar not in TEMPLATE_GRAMMARS:
            raise ValueError(
                f"Skill {self.name!r}: grammar={self.grammar!r} is not known; "
                f"use one of {', '.join(TEMPLATE_GRAMMARS)}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["examples"] = list(self.examples)
        d["rules"] = list(self.rules)
        return d

    @classmethod
    def from_dict(cls, data: dict, source: str = "skill") -> Skill:
        if not isinstance(data, dict):
            raise ValueError(f"{source}: a skill must be a JSON object, got {type(data).__name__}")
        known = {"name", "description", "examples", "rules", "word_limit", "grammar"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown field(s) {unknown}; a skill has {sorted(known)}")
        missing = sorted({"name", "description", "examples"} - set(data))
        if missing:
            raise ValueError(f"{source}: missing field(s) {missing}")
        for key in ("examples", "rules"):
            if key in data and not (isinstance(data[key], list) and all(isinstance(x, str) for x in data[key])):
                raise ValueError(f"{source}: '{key}' must be a list of strings")
        for key in ("name", "description", "grammar"):
            if key in data and not isinstance(data[key], str):
                raise ValueError(f"{source}: '{key}' must be a string, got {data[key]!r}")
        kwargs = dict(data)
        kwargs["examples"] = tuple(data["examples"])
        kwargs["rules"] = tuple(data.get("rules", ()))
        if "word_limit" in kwargs and not _is_int(kwargs["word_limit"]):
            raise ValueError(f"{source}: 'word_limit' must be an integer, got {kwargs['word_limit']!r}")
        return cls(**kwargs)


def builtin_skill_names() -> list[str]:
    """Names of the skills shipped with the package, sorted."""
    return sorted(p.stem for p in LIBRARY_DIR.glob("*.json"))


def builtin_skill(name: str) -> Skill:
    """One shipped skill by name."""
    path = LIBRARY_DIR / f"{name}.json"
    if not _NAME_RE.match(name) or not path.is_file():  # the name check keeps '../x' out of the library
        raise ValueError(f"no built-in skill named {name!r}; choose one of {', '.join(builtin_skill_names())}")
    return Skill.from_dict(json.loads(path.read_text(encoding="utf-8")), source=str(path))


def load_skills_file(path: str | Path) -> list[Skill]:
    """Custom skills from a JSON file: one skill object, or a list of them."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"skills file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"skills file {path} is not valid UTF-8 JSON: {e}") from None
    except OSError as e:
        raise ValueError(f"skills file {path} cannot be read: {e}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ValueError(f"skills file {path} holds an empty list; put one skill object (or several) in it")
    skills = [Skill.from_dict(item, source=f"{path}[{i}]") for i, item in enumerate(items)]
    names = [s.name for s in skills]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"skills file {path}: skill name(s) {dupes} appear more than once")
    return skills


def resolve_skill(spec: str | Skill) -> Skill:
    """A Skill from a built-in name, a path to a JSON file holding exactly one skill, or a Skill."""
    if isinstance(spec, Skill):
        return spec
    spec = str(spec)
    if spec.endswith(".json") or Path(spec).is_file():
        skills = load_skills_file(spec)
        if len(skills) != 1:
            raise ValueError(f"{spec} holds {len(skills)} skills; pick one by name or split the file")
        return skills[0]
    return builtin_skill(spec)


def save_skill(skill: Skill, run_dir: str | Path) -> Path:
    """Write `skills/<name>.json` into a run directory (atomically) and return its path."""
    from ..atomic_files import write_text_atomic

    path = Path(run_dir) / "skills" / f"{skill.name}.json"
    write_text_atomic(path, json.dumps(skill.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return path
