"""Shared pytest fixtures. Keep each fixture small and documented; one concern per fixture."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from selma.testing.fake_openai import FakeOpenAIServer


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A FakeOpenAIServer on 127.0.0.1 for one test; set `.expected_api_key` / `.latency` or call `.script()`
    on it as needed. Stopped (port closed) after the test."""
    with FakeOpenAIServer() as server:
        yield server


REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def node_package() -> ModuleType:
    """This repository imported the way ComfyUI imports a custom-node folder: as a package (named
    `comfyui_selma` here) whose `nodes/` reach the core by relative imports."""
    name = "comfyui_selma"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def comfy_folders(comfy, tmp_path_factory):
    """ComfyUI's output, models/loras and models/styleinject folders in a temporary directory (what the nodes
    write into), for in-process ComfyUI tests."""
    import folder_paths

    root = tmp_path_factory.mktemp("comfy")
    folder_paths.set_output_directory(str(root / "output"))
    folder_paths.add_model_folder_path("loras", str(root / "loras"), is_default=True)
    folder_paths.add_model_folder_path("styleinject", str(root / "styleinject"), is_default=True)
    return root


@pytest.fixture(scope="session")
def comfy():
    """ComfyUI's own modules, from COMFYUI_PATH (run pytest with ComfyUI's Python, which has its dependencies);
    skipped without it. On a machine without CUDA, ComfyUI is told to use the CPU, as `main.py --cpu` does."""
    import os

    import torch

    path = os.environ.get("COMFYUI_PATH")
    if not path:
        pytest.skip("set COMFYUI_PATH to a ComfyUI checkout")
    sys.path.insert(0, path)
    import comfy.cli_args

    if not torch.cuda.is_available():
        comfy.cli_args.args.cpu = True
    import comfy.model_base
    import comfy.model_patcher
    import comfy.sample
    import comfy.sd
    import comfy.supported_models
    import comfy.utils

    return comfy


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory):
    """A real ComfyUI (`main.py --cpu`, from COMFYUI_PATH, run by COMFYUI_PYTHON or this Python) serving on a free
    port, with this repository linked into its custom_nodes/ as a user installs it, in a temporary base directory;
    skipped without COMFYUI_PATH. One per session: the comfyui-marked HTTP, comfy-cli and browser tests share it."""
    import os

    from selma.testing.comfyui_server import ComfyUIServer

    path = os.environ.get("COMFYUI_PATH")
    if not path:
        pytest.skip("set COMFYUI_PATH to a ComfyUI checkout")
    base = tmp_path_factory.mktemp("comfyui-base")
    with ComfyUIServer(path, REPO_ROOT, base, python=os.environ.get("COMFYUI_PYTHON")) as server:
        yield server


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    """Where tests keep what a person should look at afterwards (screenshots): $SELMA_TEST_ARTIFACTS if set (CI
    sets it), else a temporary folder."""
    import os

    folder = os.environ.get("SELMA_TEST_ARTIFACTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


_HOLD = """
import sys, time
from selma.stage_lock import acquire
acquire(sys.argv[1], sys.argv[2], "test")
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def lock_holder():
    """`hold(folder, stage)`: a child process that holds that stage lock (selma.stage_lock) until `.kill()`ed
    (SIGKILL: its lock file stays behind, as after a crash). Every child is killed after the test."""
    import signal
    import subprocess

    children = []

    class Holder:
        def __init__(self, folder, stage) -> None:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _HOLD, str(folder), stage], stdout=subprocess.PIPE, text=True
            )
            children.append(self.process)
            assert self.process.stdout.readline().strip() == "held"
            self.pid = self.process.pid

        def kill(self) -> None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    yield Holder
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
