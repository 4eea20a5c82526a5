"""`python -m bench`'s report: rows recorded by a benchmark process, goals checked, results.md/.json and the
README block regenerated (on a stand-in benchmark, so no real benchmark runs here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    module = load("bench_main_under_test", ROOT / "bench" / "__main__.py")
    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    (bench_dir / "fake.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from bench.record import record\n"
        "print('measuring')\n"
        "record('fake', 'a step', 'the anchor', 2.0, 'ours', 1.0, 's', goal='<= 0.6')\n"
        "record('fake', 'a rate', 'one at a time', 10.0, 'eight at a time', 70.0, 'items/s', goal='>= 6')\n"
    )
    (tmp_path / "README.md").write_text("# x\n\nbefore\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\nafter\n")
    monkeypatch.setattr(module, "HERE", bench_dir)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "BENCHMARKS", {"fake": ([], "a stand-in")})
    return module, tmp_path


def test_a_run_writes_the_report_and_the_readme_table_from_the_recorded_rows(runner, monkeypatch) -> None:
    module, root = runner
    monkeypatch.setattr(sys, "argv", ["bench"])
    module.main()
    report = json.loads((root / "bench" / "results.json").read_text())
    assert [row["work"] for row in report["rows"]] == ["a step", "a rate"]
    assert report["rows"][0]["ratio"] == pytest.approx(0.5) and report["runs"]["fake"]["status"] == 0
    markdown = (root / "bench" / "results.md").read_text()
    assert "| fake | a step | the anchor | 2 s | ours | 1 s | 0.5 | <= 0.6 ✓ |" in markdown
    assert "| 7 | >= 6 ✓ |" in markdown
    readme = (root / "README.md").read_text()
    assert "old table" not in readme and readme.startswith("# x\n\nbefore\n") and readme.endswith("after\n")
    assert "| fake | a step |" in readme
    assert (root / "bench" / "logs" / "fake.txt").read_text().strip() == "measuring"


def test_goals_are_checked_and_a_failed_benchmark_fails_the_run(runner, monkeypatch) -> None:
    module, root = runner
    assert module.goal_met({"ratio": 1.31, "goal": "<= 1.3"}) is False
    assert module.goal_met({"ratio": 0.003, "goal": "<= 1/300"}) is True
    assert module.goal_met({"ratio": 5.9, "goal": ">= 6"}) is False
    assert module.goal_met({"ratio": 5.9, "goal": ""}) is None
    (root / "bench" / "fake.py").write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(sys, "argv", ["bench", "--no-readme"])
    with pytest.raises(SystemExit, match="benchmarks that failed: fake"):
        module.main()
    assert json.loads((root / "bench" / "results.json").read_text())["runs"]["fake"]["status"] == 3
    assert "old table" in (root / "README.md").read_text()


def test_record_writes_nothing_without_the_variable(tmp_path, monkeypatch) -> None:
    record = load("bench_record_under_test", ROOT / "bench" / "record.py")
    monkeypatch.delenv(record.ENV, raising=False)
    record.record("b", "w", "a", 1.0, "o", 2.0, "s")  # no file named: a hand run records nothing
    target = tmp_path / "rows.jsonl"
    monkeypatch.setenv(record.ENV, str(target))
    record.record("b", "w", "a", 4.0, "o", 2.0, "s", goal="<= 1")
    assert json.loads(target.read_text())["ratio"] == 0.5
