"""A real ComfyUI server for tests: `main.py --cpu` from a ComfyUI checkout, in its own base directory, with this
package linked into its custom_nodes/ (as a user installs it) and the given Python (one with torch and ComfyUI's
requirements, e.g. the venv `shared/comfyui/setup.sh` filled).

    with ComfyUIServer(comfyui_path, package_dir, base_dir) as server:
        server.get_json("/object_info/SelmaTrainExpert")

Startup fails with ComfyUI's log when our package did not import (ComfyUI itself only logs that), or when the
server is not up in `startup_timeout` seconds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ComfyUIServerError(RuntimeError):
    pass


class ComfyUIServer:
    def __init__(
        self,
        comfyui_path: str | Path,
        package_dir: str | Path,
        base_dir: str | Path,
        python: str | None = None,
        node_folder: str = "comfyui-selma",
        startup_timeout: float = 180.0,
    ) -> None:
        self.comfyui_path = Path(comfyui_path)
        if not (self.comfyui_path / "main.py").is_file():
            raise ComfyUIServerError(f"{self.comfyui_path} is not a ComfyUI checkout (no main.py there)")
        self.package_dir = Path(package_dir).resolve()
        self.base_dir = Path(base_dir)
        # A relative path (setup.sh prints the one it was given) is the caller's, not ComfyUI's folder's.
        self.python = os.path.abspath(python) if python and os.sep in python else (python or sys.executable)
        self.node_folder = node_folder
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base_dir / "comfyui.log"
        self.process: subprocess.Popen | None = None

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def models_dir(self) -> Path:
        return self.base_dir / "models"

    def start(self) -> ComfyUIServer:
        custom_nodes = self.base_dir / "custom_nodes"
        custom_nodes.mkdir(parents=True, exist_ok=True)
        link = custom_nodes / self.node_folder
        if not link.exists():
            link.symlink_to(self.package_dir, target_is_directory=True)
        command = [
            self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(self.base_dir), "--disable-auto-launch",
            "--database-url", "sqlite:///:memory:",
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, cwd=self.comfyui_path, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_up()
        if f"IMPORT FAILED): {link}" in self.log() or "SelmaTrainExpert" not in self.get_json("/object_info"):
            self.stop()
            raise ComfyUIServerError(f"ComfyUI started without our nodes; its log:\n{self.log()[-6000:]}")
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ComfyUIServerError(f"ComfyUI exited with {self.process.returncode}; its log:\n{self.log()}")
            try:
                self.get_json("/system_stats", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        self.stop()
        raise ComfyUIServerError(f"ComfyUI was not up after {self.startup_timeout:.0f} s; its log:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, timeout: float = 30) -> tuple[int, bytes]:
        """(status, body) of a GET; an HTTP error status is returned, not raised."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def get_json(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def post_json(self, path: str, body, timeout: float = 30) -> tuple[int, dict]:
        """(status, decoded body) of a JSON POST; an HTTP error status is returned, not raised."""
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def run_prompt(self, prompt: dict, timeout: float = 300) -> dict:
        """Queue an API-format prompt and wait for it: its /history entry (outputs, status and messages, e.g.
        which nodes ComfyUI took from its cache). A prompt ComfyUI refuses raises with its node errors."""
        status, answer = self.post_json("/prompt", {"prompt": prompt})
        if status != 200:
            raise ComfyUIServerError(f"ComfyUI refused the prompt ({status}): {json.dumps(answer)[:2000]}")
        prompt_id, deadline = answer["prompt_id"], time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get_json(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
                return history[prompt_id]
            time.sleep(0.2)
        raise ComfyUIServerError(f"prompt {prompt_id} did not finish in {timeout:.0f} s; log:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ComfyUIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
