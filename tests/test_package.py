"""Packaging facts that bite: light import, lazy names, the two dependency lists, the README commands."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import selma

ROOT = Path(__file__).resolve().parents[1]


def test_import_selma_loads_no_heavy_library():
    heavy = "('torch', 'diffusers', 'transformers', 'peft')"
    code = f"import sys, selma; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


STAGE_PACKAGES = [
    "selma", "selma.prompts", "selma.datasets", "selma.models", "selma.experts", "selma.training",
    "selma.inspection", "selma.evaluation", "selma.pipeline",
]  # fmt: skip


@pytest.mark.parametrize("package", STAGE_PACKAGES)
def test_every_lazy_name_resolves_to_the_object_its_module_defines(package):
    module = importlib.import_module(package)
    assert module._LAZY, f"{package} exports nothing"
    for name, where in module._LAZY.items():
        value = getattr(module, name)
        assert value is getattr(importlib.import_module(where, package), name), name
        assert name in module.__all__


@pytest.mark.parametrize("package", STAGE_PACKAGES[1:])
def test_importing_a_stage_package_loads_no_heavy_library(package):
    heavy = "('torch', 'diffusers', 'transformers', 'peft')"
    code = f"import sys, {package}; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        selma.nope  # noqa: B018


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[ ]", r.strip(), maxsplit=1)[0].lower() for r in requirements if r.strip()}


def test_requirements_txt_matches_pyproject_except_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert _names(lines) == _names(project["dependencies"]) - {"torch"}
    assert project["scripts"] == {"selma": "selma.cli:main"}


def test_pyproject_installs_selma_only_never_a_top_level_nodes_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["selma", "selma.*"]


def test_readme_has_both_fresh_machine_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    demo = re.search(r"^    (.*)  # <- demo command$", readme, re.M)
    test = re.search(r"^    (.*)  # <- test command$", readme, re.M)
    assert demo and "pip install torch==2.13.0" in demo.group(1) and "selma demo" in demo.group(1)
    assert test and "pip install torch==2.13.0" in test.group(1) and "pytest" in test.group(1)
    assert "# <- test command" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("package", STAGE_PACKAGES)
def test_no_export_shares_a_name_with_a_submodule(package):
    # importing the submodule would replace the exported object with the module on the package
    folder = Path(importlib.import_module(package).__file__).parent
    clashes = sorted(n for n in importlib.import_module(package)._LAZY if (folder / f"{n}.py").exists())
    assert not clashes, f"{package} exports {clashes}, which are also its submodules' names"


def test_the_random_sd15_writer_runs_by_path_with_a_python_that_has_no_selma(tmp_path):
    # what the README tells ComfyUI users: `python custom_nodes/comfyui-selma/selma/testing/random_sd15.py models`
    # from ComfyUI's folder, whose Python has torch but not selma; -S leaves out the .pth of our editable install
    import site

    script = ROOT / "selma" / "testing" / "random_sd15.py"
    code = (
        "import sys, runpy; sys.path += sys.argv[1:]; sys.argv = ['random_sd15.py', '--help']\n"
        "try:\n    import selma\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('selma importable')\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code, *site.getsitepackages()], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: random_sd15.py [-h] [--seed SEED] models_dir")
