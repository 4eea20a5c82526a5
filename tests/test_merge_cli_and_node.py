"""`selma merge`, the SelmaMergeExperts node and ExpertRef (what SELMA_EXPERT sockets carry): files in, a merged
expert file (recipe in its header) and a report out, self-checks, and the clear errors for bad input."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import save_file

from selma.cli import main
from selma.experts.lora_expert import LoraExpert, LoraModule
from selma.experts.lora_files import load_lora_expert, save_lora_expert
from selma.experts.ref import ExpertRef, read_header
from selma.merging import METHODS, check_linear_equals_sum

Q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
K = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
V = "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_v"
SHAPES = {Q: (16, 16), K: (16, 12), V: (16, 16)}
BASE = "UNet2DConditionModel:0123456789abcdef"


def random_expert(seed: int, rank: int, names: list[str], skill: str, shapes=SHAPES) -> LoraExpert:
    gen = torch.Generator().manual_seed(seed)
    modules = {
        name: LoraModule(
            torch.randn(rank, shapes[name][1], generator=gen), torch.randn(shapes[name][0], rank, generator=gen), 4.0
        )
        for name in names
    }
    return LoraExpert(modules, {"skill": skill, "base_model": BASE})


@pytest.fixture
def experts(tmp_path) -> dict:
    """Two expert files of ranks 2 and 3 over overlapping module sets, and their experts."""
    made = {"counting": random_expert(1, 2, [Q, K], "counting"), "spatial": random_expert(2, 3, [K, V], "spatial")}
    paths = {skill: save_lora_expert(tmp_path / f"{skill}.safetensors", e) for skill, e in made.items()}
    return {"paths": paths, "experts": made, "out": tmp_path / "merged.safetensors"}


def merge(experts: dict, *extra: str) -> int:
    return main(["merge", *map(str, experts["paths"].values()), "-o", str(experts["out"]), *extra])


# --- the CLI -----------------------------------------------------------------------------------------------------


def test_cli_linear_merge_writes_the_expert_its_recipe_and_the_report(experts, capsys):
    assert merge(experts) == 0
    merged = load_lora_expert(experts["out"])
    assert check_linear_equals_sum(list(experts["experts"].values()), None, merged).passed
    assert merged.metadata["skill"] == "counting+spatial" and merged.metadata["base_model"] == BASE
    recipe = merged.metadata["merge"]
    assert recipe["method"] == "linear" and recipe["weights"] == [0.5, 0.5] and recipe["exact"] is True
    assert [i["file"] for i in recipe["inputs"]] == ["counting.safetensors", "spatial.safetensors"]
    assert [i["skill"] for i in recipe["inputs"]] == ["counting", "spatial"]
    report = json.loads((experts["out"].parent / "merged.report.json").read_text())
    assert report["output"] == "merged.safetensors" and report["method"] == "linear"
    assert report["summary"]["modules"] == 3 and {m["module"] for m in report["modules"]} == set(SHAPES)
    assert {m["module"]: m["rank"] for m in report["modules"]} == {Q: 2, K: 5, V: 3}
    assert report["checks"] == [] and report["inputs"][1]["file"] == "spatial.safetensors"
    out = capsys.readouterr().out
    assert out.startswith("merge: linear of 2 expert(s), weights [0.5, 0.5]\n3 module(s), rank 2..5")
    assert f"wrote {experts['out']}" in out and "merged.report.json" in out


def test_cli_replaces_a_merge_only_with_its_own_recipe_or_when_told(experts, capsys):
    assert merge(experts) == 0
    assert merge(experts) == 0, "a rerun of the same recipe replaces its own output"
    first = experts["out"].read_bytes()
    assert main(["merge", str(experts["paths"]["spatial"]), "-o", str(experts["out"])]) == 2
    err = capsys.readouterr().err
    assert "already holds another merge (linear of counting.safetensors + spatial.safetensors, weights 0.5,0.5)" in err
    assert "this one is linear of spatial.safetensors, weights 1. Give this merge another output name" in err
    assert merge(experts, "--weights", "0.3,0.7") == 2 and "--overwrite" in capsys.readouterr().err
    assert experts["out"].read_bytes() == first, "a refused merge leaves the file as it was"
    assert merge(experts, "--weights", "0.3,0.7", "--overwrite") == 0
    assert load_lora_expert(experts["out"]).metadata["merge"]["weights"] == [0.3, 0.7]
    experts["out"].write_bytes(b"someone else's file")
    assert merge(experts) == 2 and "already holds a file that is not a SELMA merge" in capsys.readouterr().err


@pytest.mark.parametrize("method", METHODS)
def test_cli_every_method_with_its_self_checks(experts, capsys, method):
    assert merge(experts, "--method", method, "--check") == 0
    out = capsys.readouterr().out
    assert f"check identity via {method}: passed" in out
    if method in ("linear", "cat"):
        assert "check linear equals the weighted sum: passed" in out
    else:
        assert f"not run ({method} compresses" in out
    assert load_lora_expert(experts["out"]).metadata["merge"]["method"] == method
    checks = json.loads((experts["out"].parent / "merged.report.json").read_text())["checks"]
    assert all(check["passed"] for check in checks) and len(checks) == (2 if method in ("linear", "cat") else 1)


def test_cli_options_reach_the_merge_and_the_report(experts, tmp_path):
    report_path = tmp_path / "reports" / "r.json"
    assert merge(experts, "--method", "svd", "--rank", "2", "--weights", "0.7,0.3", "--report", str(report_path)) == 0
    report = json.loads(report_path.read_text())
    assert report["method"] == "svd" and report["weights"] == [0.7, 0.3] and report["rank"] == 2
    assert all(m["rank"] == 2 for m in report["modules"]) and report["summary"]["energy_kept_min"] < 1.0
    assert load_lora_expert(experts["out"]).ranks == {Q: 2, K: 2, V: 2}
    assert not (tmp_path / "merged.report.json").exists()


def test_cli_dare_seed_and_density_are_recorded(experts):
    assert merge(experts, "--method", "dare", "--density", "0.3", "--seed", "7") == 0
    recipe = load_lora_expert(experts["out"]).metadata["merge"]
    assert recipe["density"] == 0.3 and recipe["seed"] == 7


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("missing", r"1 expert file\(s\) not found: \S*nope\.safetensors"),
        ("weights_count", r"weights has 1 value\(s\) but 2 expert\(s\) were given"),
        ("weights_text", r"'x' is not a number; give one number per expert"),
        ("other_base", r"experts disagree on module '\S*attn2\.to_k': .*\(ΔW 16x12\) .*\(ΔW 16x24\)"),
        ("empty", r"no experts to merge"),
        ("rank", r"rank=20 is larger than possible for module .* its rank is at most 16; use rank <= 12"),
        ("suffix", r"must be written to a \.safetensors file"),
        ("styleinject", r"style\.safetensors is a 'styleinject' expert; only LoRA experts can be merged here"),
        ("nan", r"nan\.safetensors: 1 tensor\(s\) hold NaN or Inf values, the first '\S*to_k\S*lora_up\.weight'"),
    ],
)
def test_cli_bad_input_fails_clearly_and_writes_nothing(experts, tmp_path, capsys, change, match):
    paths, out = [str(p) for p in experts["paths"].values()], str(experts["out"])
    extra: list[str] = []
    if change == "missing":
        paths.append(str(tmp_path / "nope.safetensors"))
    elif change == "weights_count":
        extra = ["--weights", "0.5"]
    elif change == "weights_text":
        extra = ["--weights", "0.5,x"]
    elif change == "other_base":
        sdxl = random_expert(3, 2, [K], "sdxl", shapes={K: (16, 24)})
        paths.append(str(save_lora_expert(tmp_path / "sdxl.safetensors", sdxl)))
    elif change == "empty":
        paths = []
    elif change == "rank":
        extra = ["--method", "svd", "--rank", "20"]
    elif change == "nan":  # a diverged run's expert: half its up-weights NaN
        broken = random_expert(4, 2, [K], "nan")
        broken.modules[K].up[::2] = float("nan")
        paths.append(str(save_lora_expert(tmp_path / "nan.safetensors", broken)))
    elif change == "styleinject":
        paths.append(str(tmp_path / "style.safetensors"))
        save_file({"x": torch.zeros(1)}, paths[-1], metadata={"selma.method": "styleinject"})
    else:
        out = str(tmp_path / "merged.pt")
    assert main(["merge", *paths, "-o", out, *extra]) == 2
    assert not list(tmp_path.glob("merged*"))
    err = capsys.readouterr().err
    assert err.startswith("selma merge: error: ") and re.search(match, err), err


# --- ExpertRef ---------------------------------------------------------------------------------------------------


def test_expert_ref_reads_the_header_first_and_the_tensors_once(experts):
    ref = ExpertRef.from_file(experts["paths"]["counting"])
    assert ref.expert is None and ref.method == "lora" and ref.skill == "counting"
    assert "expert=" not in repr(ref)  # tensors never flood a log line
    loaded = ref.load()
    assert ref.load() is loaded and set(loaded.modules) == {Q, K}


def test_expert_ref_of_a_foreign_lora_file_is_named_after_the_file(tmp_path):
    path = tmp_path / "someones_lora.safetensors"
    save_file({f"unet.{Q}.lora_A.weight": torch.ones(2, 16), f"unet.{Q}.lora_B.weight": torch.ones(16, 2)}, path)
    ref = ExpertRef.from_file(path)
    assert (ref.method, ref.skill) == ("lora", "someones_lora") and read_header(path) == {}
    assert ref.load().ranks == {Q: 2}


def test_expert_ref_refuses_broken_files_and_other_methods(tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match=r"broken.safetensors is not a readable \.safetensors file"):
        ExpertRef.from_file(broken)
    with pytest.raises(FileNotFoundError, match="no expert file at"):
        ExpertRef.from_file(tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match=r"holds a 'loha' expert, not a LoRA expert"):
        ExpertRef(tmp_path / "s.safetensors", method="loha").load()


# --- the node ----------------------------------------------------------------------------------------------------


@pytest.fixture
def loras(tmp_path, monkeypatch):
    folder = tmp_path / "loras"
    monkeypatch.setenv("SELMA_LORAS_DIR", str(folder))
    return folder


def test_node_schema_offers_eight_sockets_and_the_methods(node_package):
    node = node_package.nodes.merging.SelmaMergeExperts
    inputs = node.INPUT_TYPES()
    assert inputs["required"]["expert_1"][0] == "SELMA_EXPERT"
    assert [k for k, v in inputs["optional"].items() if v[0] == "SELMA_EXPERT"] == [f"expert_{k}" for k in range(2, 9)]
    assert inputs["required"]["method"][0] == list(METHODS) and inputs["optional"]["expert_files"][0] == "STRING"
    assert node.RETURN_TYPES == ("SELMA_EXPERT", "STRING") and node.OUTPUT_NODE
    assert node_package.nodes.NODE_CLASS_MAPPINGS["SelmaMergeExperts"] is node


def test_node_merges_socket_experts_and_named_files_into_models_loras(node_package, experts, loras):
    package_ref = node_package.selma.experts.ref.ExpertRef
    (loras / "selma").mkdir(parents=True)
    (loras / "selma" / "spatial.safetensors").write_bytes(experts["paths"]["spatial"].read_bytes())
    counting = package_ref.from_file(experts["paths"]["counting"])
    counting.load()  # an expert already in memory, as the trainer node passes it on
    node = node_package.nodes.merging.SelmaMergeExperts()
    out = node.merge(counting, "svd", "0.25, 0.75", 2, 0.5, 0, "selma/merged.safetensors", "selma/spatial.safetensors")
    ref, report = out["result"]
    assert isinstance(ref, package_ref) and ref.path == loras / "selma" / "merged.safetensors" and ref.path.is_file()
    assert ref.skill == "counting+spatial" and ref.method == "lora" and ref.expert.ranks == {Q: 2, K: 2, V: 2}
    assert (loras / "selma" / "merged.report.json").is_file()
    assert report.splitlines()[0] == "merge: svd of 2 expert(s), weights [0.25, 0.75], rank 2" and K in report
    assert "wrote" in out["ui"]["text"][0]
    recipe = load_lora_expert(ref.path).metadata["merge"]
    assert [i["file"] for i in recipe["inputs"]] == ["counting.safetensors", "spatial.safetensors"]


def test_node_takes_the_sockets_in_order_and_exact_merges_equal_the_sum(node_package, experts, loras):
    package_ref = node_package.selma.experts.ref.ExpertRef
    refs = [package_ref.from_file(p) for p in experts["paths"].values()]
    node = node_package.nodes.merging.SelmaMergeExperts()
    ref, _ = node.merge(refs[0], "cat", "1,-1", 0, 0.5, 0, "m.safetensors", expert_3=refs[1])["result"]
    reloaded = load_lora_expert(loras / "m.safetensors")
    assert check_linear_equals_sum(list(experts["experts"].values()), [1.0, -1.0], reloaded).passed
    assert ref.expert.metadata["merge"]["weights"] == [1.0, -1.0]


def test_node_refuses_to_replace_another_recipes_merge_unless_switched(node_package, experts, loras):
    ref = node_package.selma.experts.ref.ExpertRef.from_file(experts["paths"]["counting"])
    other = node_package.selma.experts.ref.ExpertRef.from_file(experts["paths"]["spatial"])
    node = node_package.nodes.merging.SelmaMergeExperts()
    node.merge(ref, "linear", "", 0, 0.5, 0, "selma/m.safetensors", expert_2=other)
    node.merge(ref, "linear", "", 0, 0.5, 0, "selma/m.safetensors", expert_2=other)  # a rerun of the graph
    with pytest.raises(ValueError, match=r"m.safetensors already holds another merge .*overwrite it explicitly"):
        node.merge(other, "linear", "", 0, 0.5, 0, "selma/m.safetensors")
    node.merge(other, "linear", "", 0, 0.5, 0, "selma/m.safetensors", overwrite=True)
    assert load_lora_expert(loras / "selma" / "m.safetensors").metadata["skill"] == "spatial"


@pytest.mark.parametrize(
    ("save_name", "files", "error", "match"),
    [
        ("../outside.safetensors", "", ValueError, r"save_name='../outside.safetensors' must be a file name under"),
        ("selma/merged.ckpt", "", ValueError, r"must be written to a \.safetensors file"),
        ("m.safetensors", "selma/missing.safetensors", FileNotFoundError, r"'selma/missing.safetensors' is not in"),
    ],
)
def test_node_bad_input_fails_clearly(node_package, experts, loras, save_name, files, error, match):
    ref = node_package.selma.experts.ref.ExpertRef.from_file(experts["paths"]["counting"])
    with pytest.raises(error, match=match):
        node_package.nodes.merging.SelmaMergeExperts().merge(ref, "linear", "", 0, 0.5, 0, save_name, files)
    assert not list(loras.rglob("*.safetensors"))
