"""Probe the CLI as a careful user would, and print the tallies: kills tried / recovered, bad inputs tried / clear
errors, secrets leaked.

    python bench/probe_reliability.py [--work DIR] [--kills 5] [--prompts 6] [--train-steps 10]

1. **Kills.** One uninterrupted `selma demo` (small: --prompts, --train-steps) is the reference. Then, for each of
   `--kills` moments spread over the reference's duration, a fresh demo is started, killed with SIGKILL at that
   moment (the stage it was in is read from its output), and rerun to the end. Recovered means: the rerun exits 0,
   every expert file holds the same tensors as the reference's, bit for bit (same machine, same code path), every
   dataset has one metadata line per image and the same pixels, and no lock file is left anywhere in the run.
2. **Bad inputs.** Each of a list of mistakes (a missing file, an impossible number, a corrupt or NaN expert, an
   unknown name, ...) is run; a clear error is exit status 1 or 2, a message on stderr, and no Python traceback.
3. **Secrets.** A fake API key in the environment (passed by variable NAME, as the CLI asks) is used by commands
   that reach for an LLM or a VLM server that is not there; the key must not appear in any output or any file.

Runs on the CPU in about 10 minutes (2 cores) with the defaults. Exit status 0 when everything held.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STAGE_RE = re.compile(r"([a-z]+(?:/[\w.+-]+)+):\s+\d+%")  # the tqdm bar of a stage: "train/shapes_counting:  40%"


def selma(*args: str, cwd: Path, env: dict | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "selma", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def demo_args(run: Path, prompts: int, steps: int) -> list[str]:
    return ["demo", "--run-dir", str(run), "--prompts", str(prompts), "--train-steps", str(steps)]


# --- 1. kills -----------------------------------------------------------------------------------------------------


def tensors_of(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {str(p.relative_to(run)): load_file(p) for p in sorted((run / "experts").rglob("*.safetensors"))}


def dataset_problems(run: Path, reference: Path) -> list[str]:
    import json

    import numpy as np
    from PIL import Image

    problems = []
    for meta in sorted((run / "datasets").glob("*/metadata.jsonl")):
        lines = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
        images = sorted(p.name for p in meta.parent.glob("*.png"))
        names = [line["file_name"] for line in lines]
        if sorted(names) != images or len(set(names)) != len(names):
            problems.append(f"{meta}: {len(lines)} lines for {len(images)} images")
        for name in images:
            ours, theirs = meta.parent / name, reference / meta.parent.relative_to(run) / name
            if not theirs.is_file() or not np.array_equal(
                np.asarray(Image.open(ours)), np.asarray(Image.open(theirs))
            ):
                problems.append(f"{ours}: pixels differ from the uninterrupted run")
    return problems


def stage_at_kill(output: str) -> str:
    stages = STAGE_RE.findall(output)
    return stages[-1] if stages else "start"


def probe_kills(work: Path, kills: int, prompts: int, steps: int) -> tuple[int, int, list[str]]:
    reference = work / "reference"
    started = time.monotonic()
    done = selma(*demo_args(reference, prompts, steps), cwd=work)
    duration = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"the reference demo failed:\n{done.stderr[-3000:]}")
    print(f"reference demo: {duration:.0f} s")
    expected = tensors_of(reference)
    recovered, lines = 0, []
    for k in range(kills):
        moment = duration * (k + 0.5) / kills
        run = work / f"killed-{k}"
        log = work / f"killed-{k}.log"
        with open(log, "w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "selma", *demo_args(run, prompts, steps)], cwd=work, stdout=out, stderr=out
            )
            time.sleep(moment)
            process.send_signal(signal.SIGKILL)
            process.wait()
        stage = stage_at_kill(log.read_text(errors="replace"))
        again = selma(*demo_args(run, prompts, steps), cwd=work)
        problems = [] if again.returncode == 0 else [f"rerun exit {again.returncode}: {again.stderr[-500:]}"]
        got = tensors_of(run)
        if got.keys() != expected.keys():
            problems.append(f"expert files differ: {sorted(set(got) ^ set(expected))}")
        for name in got.keys() & expected.keys():
            if got[name].keys() != expected[name].keys() or any(
                not torch.equal(got[name][t], expected[name][t]) for t in got[name]
            ):
                problems.append(f"{name}: tensors differ from the uninterrupted run")
        problems += dataset_problems(run, reference)
        problems += [f"lock file left: {p}" for p in run.rglob("*.lock")]
        recovered += not problems
        verdict = "recovered" if not problems else "NOT recovered: " + "; ".join(problems[:3])
        lines.append(f"kill {k + 1} at {moment:.0f} s (stage {stage}): {verdict}")
        print(lines[-1])
    return kills, recovered, lines


# --- 2. bad inputs ------------------------------------------------------------------------------------------------


def bad_inputs(work: Path) -> list[tuple[str, list[str]]]:
    """(what is wrong, the command's arguments) for each mistake tried."""
    run = work / "reference"  # a finished run: real experts and datasets to point at
    expert = next((run / "experts").glob("shapes_counting.safetensors"), run / "experts" / "missing.safetensors")
    bad = work / "bad"
    bad.mkdir(exist_ok=True)
    (bad / "garbage.safetensors").write_bytes(b"this is not a safetensors file")
    (bad / "truncated.safetensors").write_bytes(expert.read_bytes()[:1000] if expert.is_file() else b"")
    if expert.is_file():
        tensors = load_file(expert)
        first = sorted(k for k in tensors if k.endswith("lora_up.weight") or "lora_B" in k)[0]
        for name, value in (("nan", float("nan")), ("inf", float("inf"))):
            broken = dict(tensors)
            broken[first] = torch.full_like(tensors[first], value)
            save_file(broken, str(bad / f"{name}.safetensors"))
    (bad / "syntax.toml").write_text("skills = [\n")
    (bad / "unknown_key.toml").write_text('run_dir = "r"\nskills = ["counting"]\nbogus = 1\n')
    (bad / "empty").mkdir(exist_ok=True)
    style = next((run / "experts").glob("*style*.safetensors"), expert)
    r = ["--run-dir", str(bad / "run")]  # an empty run
    shapes = ["--run-dir", str(run), "--model", "shapes"]  # the finished run and the shipped model
    count = ["--skill", "shapes_counting"]
    out = ["-o", str(bad / "m.safetensors")]
    llm = ["--llm", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"]
    circle = ["--prompt", "a red circle"]
    cases = [
        ("unknown skill", ["prompts", *r, "--skill", "no_such_skill", "--count", "3"]),
        ("zero prompts", ["prompts", *r, "--skill", "counting", "--count", "0"]),
        ("count not a number", ["prompts", *r, "--skill", "counting", "--count", "many"]),
        ("threshold out of range", ["prompts", *r, "--skill", "counting", "--count", "3", "--threshold", "2"]),
        ("unknown LLM backend", ["prompts", *r, "--skill", "counting", "--count", "3", "--llm", "gpt"]),
        (
            "API key variable not set",
            [
                "prompts",
                *r,
                "--skill",
                "counting",
                "--count",
                "3",
                *llm,
                "--api-key-env",
                "SELMA_PROBE_UNSET_VARIABLE",
            ],
        ),  # fmt: skip
        (
            "a skills file that is not there",
            ["prompts", *r, "--skill", "x", "--skills-file", "no.json", "--count", "1"],
        ),
        ("a model folder that is not there", ["images", "--run-dir", str(run), "--model", str(bad / "no-model")]),
        ("images before prompts", ["images", *r, "--model", "shapes", "--skill", "counting"]),
        ("width not a multiple of 8", ["images", *shapes, "--width", "63"]),
        ("batch size 0", ["images", *shapes, "--batch-size", "0"]),
        ("unknown dtype", ["images", *shapes, "--dtype", "float12"]),
        ("a GPU that is not there", ["images", *shapes, "--device", "cuda:7"]),
        ("filter threshold above 1", ["images", *shapes, "--filter-threshold", "2"]),
        ("training without a dataset", ["train", *r, "--model", "shapes", "--skill", "counting"]),
        ("rank 0", ["train", *shapes, *count, "--rank", "0"]),
        ("negative learning rate", ["train", *shapes, *count, "--lr", "-1"]),
        ("resolution not a multiple of 8", ["train", *shapes, *count, "--resolution", "33"]),
        ("filtered data that was never filtered", ["train", *shapes, *count, "--data", "filtered"]),
        ("merge of nothing", ["merge", *out]),
        ("merge of a missing file", ["merge", str(bad / "absent.safetensors"), *out]),
        ("merge of a garbage file", ["merge", str(bad / "garbage.safetensors"), *out]),
        ("merge of a truncated file", ["merge", str(bad / "truncated.safetensors"), *out]),
        ("merge of a NaN expert", ["merge", str(bad / "nan.safetensors"), str(expert), *out]),
        ("merge of an Inf expert", ["merge", str(bad / "inf.safetensors"), *out]),
        ("merge into a .ckpt", ["merge", str(expert), "-o", str(bad / "m.ckpt")]),
        ("more weights than experts", ["merge", str(expert), "--weights", "0.5,0.5", *out]),
        ("unknown merge method", ["merge", str(expert), "--method", "mean", *out]),
        ("run config that is not there", ["run", str(bad / "absent.toml")]),
        ("run config with a syntax error", ["run", str(bad / "syntax.toml")]),
        ("run config with an unknown key", ["run", str(bad / "unknown_key.toml")]),
        ("evaluation of an empty run", ["eval", "--run-dir", str(bad / "empty")]),
        ("demo with 0 prompts", ["demo", "--run-dir", str(bad / "demo"), "--prompts", "0"]),
        (
            "inspect a LoRA as StyleInject",
            ["inspect", "--model", "shapes", "--expert", str(expert), *circle, "-o", str(bad / "i")],
        ),  # fmt: skip
        (
            "inspect a NaN expert",
            ["inspect", "--model", "shapes", "--expert", str(bad / "nan.safetensors"), *circle, "-o", str(bad / "i")],
        ),  # fmt: skip
        (
            "compare with a missing expert",
            [
                "compare",
                "--model",
                "shapes",
                "--expert",
                f"x={bad / 'absent.safetensors'}",
                *circle,
                "-o",
                str(bad / "g.png"),
            ],
        ),  # fmt: skip
        ("skills show of an unknown skill", ["skills", "no_such_skill"]),
        ("preview of a folder that is not a dataset", ["preview", str(bad / "empty")]),
    ]
    if style.is_file():
        cases.append(("inspect with 0 steps", ["inspect", "--model", "shapes", "--expert", str(style), *circle,
                                               "--steps", "0", "-o", str(bad / "i")]))  # fmt: skip
    return cases


def probe_bad_inputs(work: Path) -> tuple[int, int, list[str]]:
    cases = bad_inputs(work)
    clear, lines = 0, []
    for what, args in cases:
        done = selma(*args, cwd=work, timeout=600)
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        ok = done.returncode in (1, 2) and bool(message) and "Traceback" not in done.stderr
        clear += ok
        lines.append(f"{'clear' if ok else 'NOT CLEAR'} ({done.returncode}) {what}: {message[:160]}")
        print(lines[-1])
    return len(cases), clear, lines


# --- 3. secrets ---------------------------------------------------------------------------------------------------


def probe_secret(work: Path) -> tuple[int, list[str]]:
    key = "sk-selma-probe-" + secrets.token_hex(12)
    env = {**os.environ, "SELMA_PROBE_KEY": key}
    run = work / "secret-run"
    url = ["--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "SELMA_PROBE_KEY", "--max-retries", "0"]
    outputs = [
        selma("prompts", "--run-dir", str(run), "--skill", "counting", "--count", "2", "--llm", "openai",
              "--model", "m", *url, cwd=work, env=env),
        selma("eval", "--run-dir", str(work / "reference"), "--answerer", "openai=m", "--answerer-url",
              "http://127.0.0.1:9/v1", "--answerer-key-env", "SELMA_PROBE_KEY", "-o", str(run / "eval"),
              cwd=work, env=env),
    ]  # fmt: skip
    leaks = [f"output of {' '.join(o.args[3:5])}" for o in outputs if key in o.stdout + o.stderr]
    for path in work.rglob("*"):
        if path.is_file() and key.encode() in path.read_bytes():
            leaks.append(str(path))
    return len(outputs), leaks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/probe"), help="scratch folder (emptied first)")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=6, help="prompts per skill of the probed demo")
    parser.add_argument("--train-steps", type=int, default=10)
    args = parser.parse_args()
    import shutil

    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    kills, recovered, _ = probe_kills(work, args.kills, args.prompts, args.train_steps)
    tried, clear, _ = probe_bad_inputs(work)
    commands, leaks = probe_secret(work)
    print(f"\nkills tried {kills}, recovered {recovered}")
    print(f"bad inputs tried {tried}, clear errors {clear}")
    print(f"fake API key used by {commands} commands, found in {len(leaks)} places{': ' if leaks else ''}"
          + ", ".join(leaks[:5]))  # fmt: skip
    return 0 if recovered == kills and clear == tried and not leaks else 1


if __name__ == "__main__":
    sys.exit(main())
