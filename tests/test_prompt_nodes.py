"""The prompt nodes, called directly as ComfyUI would call them (no ComfyUI needed)."""

from __future__ import annotations

import json

import pytest

from selma.atomic_files import read_jsonl
from selma.prompts.diversity import filter_diverse


@pytest.fixture
def prompt_nodes(node_package, tmp_path, monkeypatch):
    monkeypatch.setenv("SELMA_OUTPUT_DIR", str(tmp_path / "output"))
    return node_package.nodes.prompts


def test_entry_point_registers_every_node_with_a_display_name(node_package):
    mappings = node_package.nodes.NODE_CLASS_MAPPINGS
    assert {"SelmaSkill", "SelmaLLM", "SelmaGeneratePrompts", "SelmaFilterPrompts"} <= set(mappings)
    assert set(mappings) == set(node_package.nodes.NODE_DISPLAY_NAME_MAPPINGS)
    assert node_package.WEB_DIRECTORY == "./web"
    for name, cls in mappings.items():
        assert name.startswith("Selma")
        spec = cls.INPUT_TYPES()
        assert set(spec) <= {"required", "optional", "hidden"}
        assert callable(getattr(cls, cls.FUNCTION))
        assert len(cls.RETURN_TYPES) == len(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES))


def test_skill_node_builtin_and_custom(prompt_nodes):
    node = prompt_nodes.SelmaSkill()
    (skill,) = node.make("counting")
    assert skill.name == "counting" and len(skill.examples) == 3
    (custom,) = node.make(
        "custom",
        name="clocks",
        description="Clocks.",
        examples="a clock\n\na watch\na sundial\n",
        rules="Name a time.",
    )
    assert custom.examples == ("a clock", "a watch", "a sundial") and custom.rules == ("Name a time.",)
    with pytest.raises(ValueError, match="at least 3"):
        node.make("custom", name="clocks", description="Clocks.", examples="a clock\na watch")


def test_llm_node_keeps_only_the_env_variable_name(prompt_nodes):
    (llm,) = prompt_nodes.SelmaLLM().make("openai", " gpt-4o-mini ", "http://127.0.0.1:1/v1", "MY_KEY", 0.7)
    assert (llm.model, llm.api_key_env, llm.temperature) == ("gpt-4o-mini", "MY_KEY", 0.7)
    with pytest.raises(ValueError, match="NAME") as err:
        prompt_nodes.SelmaLLM().make("openai", "m", "", "sk-proj-AAAAAAAAAAAAAAAAAAAAAAAA", 1.0)
    assert "sk-proj" not in str(err.value), "a key pasted into the widget must not be echoed"


def test_generate_node_returns_a_list_and_writes_the_run(prompt_nodes, tmp_path):
    (skill,) = prompt_nodes.SelmaSkill().make("spatial")
    node = prompt_nodes.SelmaGeneratePrompts
    assert node.OUTPUT_IS_LIST == (True, False)
    prompts, prompt_set = node().generate(skill, count=12, threshold=0.8, seed=3, run_name="r1")
    assert len(prompts) == 12 == len(set(prompts))
    assert prompt_set.skill == "spatial" and prompt_set.prompts == prompts
    path = tmp_path / "output" / "selma" / "r1" / "prompts" / "spatial.jsonl"
    assert [r["text"] for r in read_jsonl(path)] == prompts
    again, _ = node().generate(skill, count=12, threshold=0.8, seed=3, run_name="r1")
    assert again == prompts


def test_generate_node_rejects_a_run_name_that_escapes_output(prompt_nodes):
    (skill,) = prompt_nodes.SelmaSkill().make("spatial")
    with pytest.raises(ValueError, match="run_name"):
        prompt_nodes.SelmaGeneratePrompts().generate(skill, 5, 0.8, 0, "../../etc")


def test_generate_node_with_openai_never_stores_the_key(prompt_nodes, openai_server, monkeypatch, tmp_path):
    key = "sk-node-SECRET-abcdefghijklmnopqrstuv"
    monkeypatch.setenv("NODE_TEST_KEY", key)
    (llm,) = prompt_nodes.SelmaLLM().make("openai", "fake", openai_server.base_url, "NODE_TEST_KEY", 1.0)
    (skill,) = prompt_nodes.SelmaSkill().make("whoops")
    prompts, prompt_set = prompt_nodes.SelmaGeneratePrompts().generate(skill, 10, 0.8, 0, "r2", llm=llm)
    assert len(prompts) == 10
    assert key not in repr(llm) and key not in json.dumps(llm.__dict__)
    for file in (tmp_path / "output").rglob("*"):
        if file.is_file():
            assert key not in file.read_text(encoding="utf-8")


def test_filter_node_takes_lists_and_multiline_strings(prompt_nodes):
    node = prompt_nodes.SelmaFilterPrompts
    assert node.INPUT_IS_LIST is True and node.OUTPUT_IS_LIST == (True,)
    items = ["a red cube on a table", "a red cube on a table.\ntwo dogs in the snow", "A red cube on a table"]
    (kept,) = node().filter(items, [0.8])
    assert kept == ["a red cube on a table", "two dogs in the snow"]
    (kept,) = node().filter(items, [0.8], pool=["two dogs in the snow"])
    assert kept == ["a red cube on a table"]
    lines = ["a red cube on a table", "a red cube on a table.", "two dogs in the snow", "A red cube on a table"]
    assert kept == [t for t, k in zip(lines, filter_diverse(lines, pool=["two dogs in the snow"]), strict=True) if k]
