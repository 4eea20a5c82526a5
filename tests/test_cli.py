"""The `selma` command: prompts, filter, skills; and that light commands never import torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from selma.atomic_files import read_jsonl
from selma.cli import main
from selma.prompts.diversity import filter_diverse


def run_selma(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "selma", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("args", [["--help"], ["filter", "--threshold", "0.8"], ["skills"]])
def test_light_commands_do_not_import_torch_diffusers_or_transformers(args):
    code = (
        "import sys, io; sys.stdin = io.StringIO('a cat\\na cat\\n')\n"
        "from selma.cli import main\ntry: main(" + repr(args) + ")\nexcept SystemExit: pass\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules);"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_filter_prints_the_kept_lines_in_order(tmp_path):
    lines = ["a red cube on a table", "a red cube on a table!", "two dogs in the snow", "", "A RED CUBE ON A TABLE"]
    file = tmp_path / "candidates.txt"
    file.write_text("\n".join(lines) + "\n")
    out = run_selma("filter", str(file))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["a red cube on a table", "two dogs in the snow"]


def test_filter_reads_stdin_and_a_pool_and_matches_filter_diverse(tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("two dogs in the snow\n")
    candidates = ["two dogs in the snow today", "a boat", "a small boat", "a small boat at night", "three cats"]
    out = run_selma("filter", "--threshold", "0.7", "--pool", str(pool), stdin="\n".join(candidates))
    mask = filter_diverse(candidates, threshold=0.7, pool=["two dogs in the snow"])
    assert out.stdout.splitlines() == [c for c, keep in zip(candidates, mask, strict=True) if keep]


def test_filter_rejects_a_bad_threshold_with_a_clear_message(tmp_path):
    out = run_selma("filter", "--threshold", "1.5", stdin="a\n")
    assert out.returncode == 2
    assert "1.5" in out.stderr and "(0, 1]" in out.stderr


def test_prompts_command_writes_and_resumes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["prompts", "--run-dir", str(run_dir), "--skill", "counting", "--count", "30"]) == 0
    assert len(read_jsonl(run_dir / "prompts" / "counting.jsonl")) == 30
    assert main(["prompts", "--run-dir", str(run_dir), "--skill", "counting", "--count", "45"]) == 0
    records = read_jsonl(run_dir / "prompts" / "counting.jsonl")
    assert len(records) == 45 == len({r["text"] for r in records})
    assert "45/45 prompts" in capsys.readouterr().out


def test_prompts_command_with_a_custom_skills_file(tmp_path):
    skills = tmp_path / "skills.json"
    skills.write_text(
        json.dumps(
            [
                {
                    "name": "clocks",
                    "description": "Clocks showing a time.",
                    "examples": ["a wall clock at noon", "a pocket watch at ten past two", "a tower clock at dusk"],
                    "grammar": "everyday",
                }
            ]
        )
    )
    run_dir = tmp_path / "run"
    code = main(
        ["prompts", "--run-dir", str(run_dir), "--skills-file", str(skills), "--skill", "clocks", "--count", "5"]
    )
    assert code == 0
    assert len(read_jsonl(run_dir / "prompts" / "clocks.jsonl")) == 5


def test_prompts_command_unknown_skill_says_which_exist(tmp_path, capsys):
    code = main(["prompts", "--run-dir", str(tmp_path), "--skill", "juggling", "--count", "5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no built-in skill named 'juggling'" in err and "counting" in err


def test_prompts_command_budget_shortfall_exits_3(tmp_path, openai_server, monkeypatch, capsys):
    openai_server.default_reply = lambda body: "4. always the very same prompt"
    monkeypatch.setenv("SELMA_KEY", "k")
    code = main([
        "prompts", "--run-dir", str(tmp_path), "--skill", "counting", "--count", "10", "--max-calls", "3",
        "--llm", "openai", "--model", "m", "--base-url", openai_server.base_url, "--api-key-env", "SELMA_KEY",
    ])  # fmt: skip
    assert code == 3
    assert "call budget ran out" in capsys.readouterr().err
    assert [r["text"] for r in read_jsonl(tmp_path / "prompts" / "counting.jsonl")] == ["always the very same prompt"]


def test_skills_lists_and_shows():
    out = run_selma("skills")
    assert out.returncode == 0 and "counting" in out.stdout and "spatial" in out.stdout
    shown = json.loads(run_selma("skills", "counting").stdout)
    assert shown["name"] == "counting" and len(shown["examples"]) == 3
