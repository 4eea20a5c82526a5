"""StyleInject in ComfyUI: the loader's module views give exactly the diffusers path's output, the router trace
splits ComfyUI's cond/uncond batches, the report and ui payload, the nodes' schemas, and the web extension's syntax.
Tests marked `comfyui` run the loader and the inspector in a real ComfyUI (set COMFYUI_PATH; see the fixture)."""

from __future__ import annotations

import copy
import functools
import importlib
import json
import math
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from selma.experts.lora_expert import LoraExpert, LoraModule
from selma.experts.lora_files import save_lora_expert
from selma.experts.style_inject_files import apply_style_inject_expert, load_style_inject_expert
from selma.experts.style_inject_from_model import style_inject_expert_from_model
from selma.experts.style_inject_save import save_style_inject_expert
from selma.models.unet_names import diffusers_to_ldm, ldm_to_diffusers
from selma.testing.tiny_models import build_tiny_sd
from selma.tuners.style_inject import StyleInjectConfig

REPO = Path(__file__).resolve().parents[1]
TARGETS = ["to_q", "to_v", "proj_in"]  # proj_in is a 1x1 Conv2d in the tiny SD UNet: both layer kinds
TINY_LDM_CONFIG = {  # the tiny SD UNet as ComfyUI's unet_config describes it
    "num_res_blocks": [2, 2],
    "channel_mult": [1, 2],
    "transformer_depth": [1, 1, 0, 0],
    "transformer_depth_output": [1, 1, 1, 0, 0, 0],
    "transformer_depth_middle": 1,
}
CONFIGS = {
    "dma+sta": {"num_styles": 3},
    "dma only": {"num_styles": 3, "use_sta": False},
    "sta only": {"num_styles": 1, "use_dma": False},
    "stacked merge": {"num_styles": 2, "num_experts": 2, "expert_weights": [0.5, 1.5]},
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: two threads oversubscribe it
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def patch(node_package):
    return importlib.import_module(f"{node_package.__name__}.nodes.glue.style_inject_patch")  # imported lazily


@pytest.fixture(scope="module")
def nodes(node_package):
    return node_package.nodes.inspection


@pytest.fixture(scope="module")
def expert_nodes(node_package):
    return node_package.nodes.experts


@functools.cache
def _unet() -> nn.Module:
    return build_tiny_sd(seed=0).unet


def fresh_unet() -> nn.Module:
    return copy.deepcopy(_unet())


def unet_inputs(dtype: torch.dtype = torch.float32) -> tuple:
    gen = torch.Generator().manual_seed(1)
    x, ctx = torch.randn(2, 4, 16, 16, generator=gen), torch.randn(2, 7, 32, generator=gen)
    return x.to(dtype), torch.tensor([10, 500]), ctx.to(dtype)


def run(unet: nn.Module, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    with torch.inference_mode():  # as ComfyUI samples
        return unet(*unet_inputs(dtype)).sample


@functools.cache
def random_expert(name: str = "dma+sta", seed: int = 0):
    """A StyleInject expert with every parameter random (B and the hypernetwork too), so each part shows."""
    unet = fresh_unet()
    unet.add_adapter(StyleInjectConfig(r=4, alpha=4, target_modules=TARGETS, **CONFIGS[name]), adapter_name="x")
    gen = torch.Generator().manual_seed(seed)
    for key, param in unet.named_parameters():
        if "styleinject" in key:
            param.data = torch.randn(param.shape, generator=gen) * 0.3
    return style_inject_expert_from_model(unet, "x")


def viewed_unet(patch, expert, strength: float = 1.0) -> nn.Module:
    """A copy of the tiny UNet whose expert modules are replaced by the loader's views (by diffusers name)."""
    unet = fresh_unet()
    for name in expert.module_names:
        base = unet.get_submodule(name)
        layer = patch.build_style_inject_layer(base, expert.config, expert.module_tensors(name), strength, name)
        unet.set_submodule(name, patch.make_view(base, [layer]))
    return unet


# ----------------------------------------------------------------------------------- the loader's module views


@pytest.mark.parametrize("name", list(CONFIGS))
def test_views_give_exactly_the_diffusers_output(patch, name):
    expert = random_expert(name)
    expected = run(apply_style_inject_expert(fresh_unet(), expert))
    assert not torch.allclose(expected, run(fresh_unet()), atol=1e-3)  # the expert does change the output
    assert torch.equal(run(viewed_unet(patch, expert)), expected)


@pytest.mark.parametrize("strength", [0.0, 0.35, -1.0])
def test_strength_matches_the_diffusers_strength_and_zero_is_the_base_model(patch, strength):
    expert = random_expert()
    got = run(viewed_unet(patch, expert, strength))
    assert torch.equal(got, run(apply_style_inject_expert(fresh_unet(), expert, strength=strength)))
    if strength == 0.0:
        assert torch.equal(got, run(fresh_unet()))


def test_an_expert_file_round_trips_into_the_same_output(patch, tmp_path):
    expert = random_expert()
    path = save_style_inject_expert(tmp_path / "e.safetensors", expert, expert.config, {"skill": "s"})
    assert torch.equal(run(viewed_unet(patch, load_style_inject_expert(path))), run(viewed_unet(patch, expert)))


def test_layers_follow_the_input_dtype_from_the_experts_own_tensors(patch):
    expert = random_expert()
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v"
    base = fresh_unet().get_submodule(name)
    layer = patch.build_style_inject_layer(base, expert.config, expert.module_tensors(name), 1.0, name)
    in_fp32, in_bf16 = patch.make_view(base, [layer]), patch.make_view(copy.deepcopy(base).bfloat16(), [layer])
    x = torch.randn(2, 64, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        first = in_fp32(x)
        half = in_bf16(x.bfloat16())
        assert layer.styleinject_up[patch.ADAPTER].dtype == torch.bfloat16 and half.dtype == torch.bfloat16
        assert torch.allclose(half.float(), first, atol=0.05, rtol=0.05)
        # Back to fp32: rebuilt from the expert's tensors, not from the bf16 copies, so nothing was rounded.
        assert torch.equal(in_fp32(x), first)
    assert layer.styleinject_up[patch.ADAPTER].dtype == torch.float32


def test_a_view_shares_the_modules_state_and_keeps_its_names(patch):
    expert = random_expert()
    unet = fresh_unet()
    keys = list(unet.state_dict())
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    base = unet.get_submodule(name)
    view = patch.make_view(base, [])
    assert isinstance(view, nn.Linear) and type(base) is nn.Linear and view.weight is base.weight
    unet.set_submodule(name, view)
    # ComfyUI patches a LoRA by replacing `<module>.weight` on whatever module sits there: the original sees it.
    patched = nn.Parameter(torch.zeros_like(base.weight), requires_grad=False)
    view.weight = patched
    assert base.weight is patched
    assert list(unet.state_dict()) == keys  # no base_layer / styleinject keys: checkpoints save as before
    assert len(expert.module_names) == 30


def test_an_expert_for_another_model_names_the_module_and_both_shapes(patch):
    expert = random_expert()
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    wrong = nn.Linear(64, 64)
    with pytest.raises(ValueError, match=r"attn1.to_q: the expert's styleinject_down has shape \(3, 4, 32\) but .*"):
        patch.build_style_inject_layer(wrong, expert.config, expert.module_tensors(name), 1.0, name)
    with pytest.raises(ValueError, match="adapts Linear and Conv2d modules, this one is a LayerNorm"):
        patch.build_style_inject_layer(nn.LayerNorm(32), expert.config, expert.module_tensors(name), 1.0, name)


# ------------------------------------------------------------------- the loader on a ModelPatcher's interface


class StandInPatcher:
    """The ModelPatcher members the loader uses, with ComfyUI's semantics (comfy/model_patcher.py): clone() copies
    the object patches, get_model_object() prefers this patcher's own patches. The real one is tested below under
    the `comfyui` marker."""

    def __init__(self, diffusion_model: nn.Module, unet_config: dict, object_patches: dict | None = None) -> None:
        self.model = SimpleNamespace(
            diffusion_model=diffusion_model, model_config=SimpleNamespace(unet_config=unet_config)
        )
        self.object_patches = dict(object_patches or {})

    def clone(self) -> StandInPatcher:
        clone = StandInPatcher(self.model.diffusion_model, self.model.model_config.unet_config, self.object_patches)
        clone.size = self.size
        return clone

    size = 0

    def model_size(self) -> int:  # ComfyUI: the module's bytes, cached in .size (which clone() copies)
        return self.size or sum(p.numel() * p.element_size() for p in self.model.diffusion_model.parameters())

    def add_object_patch(self, name: str, obj: object) -> None:
        self.object_patches[name] = obj

    def get_model_object(self, name: str) -> object:
        if name in self.object_patches:
            return self.object_patches[name]
        return functools.reduce(getattr, name.split("."), self.model)


def ldm_named(unet: nn.Module, names: list[str]) -> nn.Module:
    """A module tree holding `unet`'s modules `names` under their LDM (ComfyUI) names."""
    root = nn.Module()
    for name in names:
        *path, leaf = diffusers_to_ldm(name, TINY_LDM_CONFIG).split(".")
        parent = root
        for part in path:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.add_module(leaf, unet.get_submodule(name))
    return root


def test_the_loader_patches_a_clone_by_ldm_name_and_leaves_the_model_alone(patch):
    expert = random_expert()
    unet = fresh_unet()
    model = StandInPatcher(ldm_named(unet, expert.module_names), TINY_LDM_CONFIG)
    clone = patch.patch_model_with_style_inject(model, expert, 0.8)
    assert model.object_patches == {}
    expected_keys = {"diffusion_model." + diffusers_to_ldm(n, TINY_LDM_CONFIG) for n in expert.module_names}
    assert set(clone.object_patches) == expected_keys
    # Put the clone's patches where ComfyUI would (here: the diffusers module of the same name).
    for key, view in clone.object_patches.items():
        unet.set_submodule(ldm_to_diffusers(key.removeprefix("diffusion_model."), TINY_LDM_CONFIG), view)
    assert torch.equal(run(unet), run(apply_style_inject_expert(fresh_unet(), expert, strength=0.8)))
    layers = patch.style_inject_layers_of(clone)
    assert sorted(layers) == expert.module_names and patch.style_inject_layers_of(model) == {}


def test_a_second_expert_stacks_and_a_view_left_by_another_clone_is_seen_through(patch):
    first, second = random_expert("dma+sta", seed=0), random_expert("dma only", seed=1)
    unet = fresh_unet()
    model = StandInPatcher(ldm_named(unet, first.module_names), TINY_LDM_CONFIG)
    stacked = patch.patch_model_with_style_inject(patch.patch_model_with_style_inject(model, first), second)
    key = "diffusion_model." + diffusers_to_ldm(first.module_names[0], TINY_LDM_CONFIG)
    view = stacked.object_patches[key]
    assert [len(layer.styleinject_hyper) for layer in view.selma_layers] == [1, 0]  # first's, then second's
    # ComfyUI keeps the last sampled clone patched in the shared model; a clone of the original must not stack
    # onto that clone's expert.
    left_over = patch.patch_model_with_style_inject(model, first).object_patches[key]
    model.model.diffusion_model.set_submodule(key.removeprefix("diffusion_model."), left_over)
    fresh = patch.patch_model_with_style_inject(model, second).object_patches[key]
    assert len(fresh.selma_layers) == 1 and fresh.__dict__ is unet.get_submodule(first.module_names[0]).__dict__


def test_an_expert_for_another_architecture_is_refused(patch):
    expert = random_expert()
    model = StandInPatcher(nn.Module(), {"num_res_blocks": [2], "channel_mult": [1], "transformer_depth": [0, 0]})
    with pytest.raises(ValueError, match="cannot place the expert's module 'down_blocks.0.attentions.0.proj_in'"):
        patch.patch_model_with_style_inject(model, expert)
    with pytest.raises(ValueError, match="strength must be a finite number"):
        patch.patch_model_with_style_inject(model, expert, float("nan"))


def test_each_loader_lists_only_the_files_it_can_load(expert_nodes, patch, tmp_path, monkeypatch):
    styles, loras = tmp_path / "styleinject", tmp_path / "loras"
    monkeypatch.setenv("SELMA_STYLEINJECT_DIR", str(styles))  # models/styleinject and models/loras outside ComfyUI
    monkeypatch.setenv("SELMA_LORAS_DIR", str(loras))
    expert = random_expert()
    save_style_inject_expert(styles / "art" / "e.safetensors", expert, expert.config, {"skill": "s"})
    save_style_inject_expert(loras / "old-art.safetensors", expert, expert.config, {"skill": "s"})  # older versions
    lora = LoraExpert({"down_blocks.0.attentions.0.proj_in": LoraModule(torch.ones(2, 4), torch.ones(4, 2), 2.0)})
    save_lora_expert(loras / "lora.safetensors", lora)
    (loras / "broken.safetensors").write_bytes(b"not a safetensors file")

    style_names = expert_nodes.SelmaLoadStyleInject.INPUT_TYPES()["required"]["expert_name"][0]
    lora_names = expert_nodes.SelmaLoadExpert.INPUT_TYPES()["required"]["expert_name"][0]
    assert style_names == ["art/e.safetensors", "old-art.safetensors"]
    assert lora_names == ["lora.safetensors"], "StyleInject files and unreadable files are not offered as LoRAs"

    model = StandInPatcher(ldm_named(fresh_unet(), expert.module_names), TINY_LDM_CONFIG)
    (clone,) = expert_nodes.SelmaLoadStyleInject().load(model, "art/e.safetensors", 1.0)
    assert len(patch.style_inject_layers_of(clone)) == 30
    with pytest.raises(ValueError, match=r"lora.safetensors holds a 'lora' expert, not a 'styleinject' one; load it"):
        expert_nodes.SelmaLoadStyleInject().load(model, "lora.safetensors", 1.0)
    with pytest.raises(ValueError, match=r"old-art.safetensors holds a 'styleinject' expert.*SELMA Load StyleInject"):
        expert_nodes.SelmaLoadExpert().load(model, "old-art.safetensors", 1.0)
    with pytest.raises(FileNotFoundError, match="'missing.safetensors' is not in models/styleinject .*models/loras"):
        expert_nodes.SelmaLoadStyleInject().load(model, "missing.safetensors", 1.0)


# ------------------------------------------------------------------------------------------ router recording


def probs(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows)


def test_a_trace_splits_comfyuis_cond_uncond_chunks(nodes):
    trace = nodes.RouterTrace(batch=2)
    # one call: chunk 0 is the negative prompt (uncond), chunk 1 the positive one, 2 latents each
    trace.add_call(
        999.0, [1, 0], {"a": probs([[1, 0], [0.5, 0.5], [0, 1], [0.25, 0.75]]), "b": torch.full((4, 2), 0.5)}
    )
    p = trace.probabilities()
    assert p.shape == (2, 1, 2, 2, 2) and trace.layers == ["a", "b"] and trace.timesteps == [999.0]
    assert p[:, 0, 0, 0].tolist() == [[0, 1], [0.25, 0.75]]  # cond
    assert p[:, 0, 1, 0].tolist() == [[1, 0], [0.5, 0.5]]  # uncond


def test_calls_at_one_noise_level_are_averaged_and_a_finished_step_starts_a_new_one(nodes):
    trace = nodes.RouterTrace(batch=1)
    trace.add_call(999.0, [0], {"a": probs([[1.0, 0.0]])})  # cond and uncond run apart (low memory)
    trace.add_call(999.0, [1], {"a": probs([[0.0, 1.0]])})
    trace.add_call(999.0, [0, 1], {"a": probs([[0.0, 1.0], [0.0, 1.0]])})  # e.g. a second, area-conditioned call
    trace.step_done()
    trace.add_call(999.0, [0, 1], {"a": probs([[0.2, 0.8], [0.4, 0.6]])})  # same sigma, but the next step
    trace.add_call(500.0, [0], {"a": probs([[0.3, 0.7]])})  # a new noise level (Heun's second evaluation)
    p = trace.probabilities()
    assert trace.timesteps == [999.0, 999.0, 500.0]
    assert p[0, 0, 0, 0].tolist() == [0.5, 0.5] and p[0, 0, 1, 0].tolist() == [0.0, 1.0]
    assert torch.allclose(p[0, 1, :, 0], probs([[0.2, 0.8], [0.4, 0.6]]))
    assert torch.isnan(p[0, 2, 1]).all()  # uncond never ran at t=500
    assert torch.allclose(p[~torch.isnan(p)].view(-1, 2).sum(-1), torch.ones(1))


def test_a_trace_refuses_what_comfyui_does_not_send(nodes):
    trace = nodes.RouterTrace(batch=2)
    with pytest.raises(ValueError, match=r"cond_or_uncond is \[0, 2\]; expected 0 \(cond\) and 1 \(uncond\)"):
        trace.add_call(1.0, [0, 2], {"a": torch.ones(4, 2) / 2})
    with pytest.raises(ValueError, match=r"layer 'a' routed a batch of 3, but 2 chunk\(s\) of 2 latent\(s\)"):
        trace.add_call(1.0, [0, 1], {"a": torch.ones(3, 2) / 2})
    with pytest.raises(ValueError, match="no router probabilities were recorded"):
        trace.probabilities()


def two_traces(nodes, steps: int = 3) -> list:
    traces = []
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        trace = nodes.RouterTrace(batch=1)
        for step in range(steps):
            calls = {name: torch.softmax(torch.randn(2, 4, generator=gen), -1) for name in ("l0", "l1", "l2")}
            trace.add_call(999.0 - 300 * step, [1, 0], calls)
            trace.step_done()
        traces.append(trace)
    return traces


def test_traces_become_the_cores_router_report(nodes):
    report = nodes.report_from_traces(["a fox", "a lighthouse"], two_traces(nodes), 1, {"seed": 0})
    assert tuple(report.probabilities.shape) == (2, 3, 2, 3, 4)
    assert report.layers == ["l0", "l1", "l2"] and report.timesteps == [999.0, 699.0, 399.0]
    assert torch.allclose(report.probabilities.sum(-1), torch.ones(2, 3, 2, 3))
    assert report.summary()["row_sum_max_error"] < 1e-6


def test_a_report_needs_both_branches_and_one_step_count(nodes):
    traces = two_traces(nodes)
    with pytest.raises(ValueError, match="2 traces for 1 prompts"):
        nodes.report_from_traces(["a fox"], traces, 1, {})
    with pytest.raises(ValueError, match="cannot be compared step by step: pick a fixed-step sampler"):
        nodes.report_from_traces(["a", "b"], [traces[0], two_traces(nodes, steps=2)[1]], 1, {})
    half = nodes.RouterTrace(batch=1)
    half.add_call(999.0, [0], {"l0": torch.ones(1, 2) / 2})
    with pytest.raises(ValueError, match="without the cond or the uncond branch"):
        nodes.report_from_traces(["a"], [half], 1, {})


def test_the_ui_payload_is_what_the_web_panel_reads(nodes):
    report = nodes.report_from_traces(["a fox", "a lighthouse"], two_traces(nodes), 1, {})
    payload = nodes.ui_payload(report)
    text = json.dumps(payload, allow_nan=False)  # ComfyUI sends it as JSON; NaN would break the browser's parse
    assert json.loads(text) == payload
    assert payload["steps"] == 3 and payload["branches"] == ["cond", "uncond"] and payload["num_styles"] == 4
    assert payload["short_layers"] == ["l0", "l1", "l2"] and payload["prompts"] == ["a fox", "a lighthouse"]
    grid = payload["probabilities"]  # [prompt][step][branch][layer][route], 4 decimals
    assert (len(grid), len(grid[0]), len(grid[0][0]), len(grid[0][0][0]), len(grid[0][0][0][0])) == (2, 3, 2, 3, 4)
    value = grid[1][2][1][0][3]
    assert value == round(float(report.probabilities[1, 2, 1, 0, 3]), 4)


# ------------------------------------------------------------------------------------------ the nodes' inputs


def test_prompts_come_as_a_string_list_or_one_per_line(nodes):
    assert nodes.parse_prompts(["a fox\n\n  a lighthouse  \n"]) == ["a fox", "a lighthouse"]
    assert nodes.parse_prompts(["a fox", "a red\nlighthouse"]) == ["a fox", "a red\nlighthouse"]
    with pytest.raises(ValueError, match="prompts is empty: type one prompt per line"):
        nodes.parse_prompts(["  \n "])


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("steps", 0, "steps must be an integer >= 1, got 0"),
        ("cfg", math.inf, "cfg must be a finite number >= 0"),
        ("width", 100, r"width must be a multiple of 8 \(pixels"),
        ("height", 4, r"height must be a multiple of 8 \(pixels"),
    ],
)
def test_inspect_settings_are_validated(nodes, field, value, match):
    with pytest.raises(ValueError, match=match):
        nodes.InspectSettings(**{field: value})


def test_the_nodes_are_registered_with_their_schemas(node_package, nodes, expert_nodes):
    mappings = node_package.nodes.NODE_CLASS_MAPPINGS
    assert mappings["SelmaLoadStyleInject"] is expert_nodes.SelmaLoadStyleInject
    assert mappings["SelmaRouterInspector"] is nodes.SelmaRouterInspector
    inspector = nodes.SelmaRouterInspector
    assert inspector.INPUT_IS_LIST and inspector.OUTPUT_NODE
    assert inspector.RETURN_TYPES == ("IMAGE", "IMAGE", "STRING")
    required = inspector.INPUT_TYPES()["required"]
    assert list(required) == [
        "model",
        "clip",
        "prompts",
        "seed",
        "steps",
        "cfg",
        "sampler_name",
        "scheduler",
        "width",
        "height",
    ]
    assert "euler" in required["sampler_name"][0] and "normal" in required["scheduler"][0]


# ------------------------------------------------------------------------------------------ the web extension


@pytest.mark.skipif(shutil.which("node") is None, reason="node (Node.js) is not on PATH")
@pytest.mark.parametrize("script", sorted(p.name for p in (REPO / "web").glob("*.js")))
def test_web_extensions_parse(script):
    result = subprocess.run(["node", "--check", str(REPO / "web" / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_web_panel_reads_the_nodes_ui_key(nodes):
    source = (REPO / "web" / "selma_router_inspector.js").read_text(encoding="utf-8")
    assert f'const UI_KEY = "{nodes.UI_KEY}";' in source and 'const NODE_TYPE = "SelmaRouterInspector";' in source


# ------------------------------------------------------------------------------------------ in a real ComfyUI


@pytest.fixture(scope="module")
def comfy_tiny_model(comfy):
    """The tiny SD UNet as a ComfyUI MODEL (ModelPatcher over BaseModel), loaded with the same weights."""
    unet_config = {
        **TINY_LDM_CONFIG,
        "in_channels": 4, "out_channels": 4, "model_channels": 32, "context_dim": 32, "image_size": 32,
        "use_spatial_transformer": True, "use_linear_in_transformer": False, "legacy": False, "use_checkpoint": False,
        "adm_in_channels": None, "num_head_channels": -1, "use_temporal_attention": False,
        "use_temporal_resblock": False, "dtype": torch.float32,
    }  # fmt: skip
    model_config = comfy.supported_models.SD15(unet_config)
    model_config.unet_config["num_heads"] = 2  # SD15 sets 8; the tiny UNet has 2 heads
    base = comfy.model_base.BaseModel(model_config, device=torch.device("cpu"))
    state = _unet().state_dict()
    converted = {ldm: state[name] for name, ldm in comfy.utils.unet_to_diffusers(unet_config).items() if name in state}
    missing, unexpected = base.diffusion_model.load_state_dict(converted, strict=False)
    assert not missing and not unexpected
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(base, load_device=cpu, offload_device=cpu)


def comfy_run(model) -> torch.Tensor:
    x, t, ctx = unet_inputs()
    with torch.inference_mode():
        model.patch_model()
        try:
            return model.model.diffusion_model(x, timesteps=t.float(), context=ctx)
        finally:
            model.unpatch_model()


@pytest.mark.comfyui
def test_in_comfyui_the_loader_gives_the_diffusers_output_and_keeps_loras(patch, comfy_tiny_model):
    model, expert = comfy_tiny_model, random_expert()
    base = comfy_run(model)
    assert torch.allclose(base, run(fresh_unet()), atol=1e-5)  # the two UNets agree before any expert
    patched_model = patch.patch_model_with_style_inject(model, expert, 0.7)
    expert_bytes = sum(t.numel() * t.element_size() for t in expert.tensors.values())
    assert patched_model.model_size() == model.model_size() + expert_bytes > model.model_size()  # ComfyUI's budget
    patched = comfy_run(patched_model)
    expected = run(apply_style_inject_expert(fresh_unet(), expert, strength=0.7))
    assert torch.allclose(patched, expected, atol=1e-4) and not torch.allclose(patched, base, atol=1e-2)
    assert torch.equal(comfy_run(model), base)  # the input MODEL is untouched
    # A LoRA-style weight patch on an adapted module still applies under the expert (before or after it).
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    key = "diffusion_model." + diffusers_to_ldm(name, TINY_LDM_CONFIG) + ".weight"
    diff = torch.randn(32, 32, generator=torch.Generator().manual_seed(3)) * 0.5
    lora_first = model.clone()
    lora_first.add_patches({key: (diff,)}, 1.0)
    lora_after = patch.patch_model_with_style_inject(model, expert, 0.7).clone()
    lora_after.add_patches({key: (diff,)}, 1.0)
    reference = apply_style_inject_expert(fresh_unet(), expert, strength=0.7)
    with torch.no_grad():
        reference.get_submodule(name).base_layer.weight += diff
    for lora in (patch.patch_model_with_style_inject(lora_first, expert, 0.7), lora_after):
        assert torch.allclose(comfy_run(lora), run(reference), atol=1e-4)


class FakeClip:
    """What the inspector asks of a CLIP: tokenize and encode_from_tokens_scheduled (ComfyUI's conditioning
    format), here a seeded random embedding per text: the text encoder is not what is tested."""

    def tokenize(self, text: str) -> str:
        return text

    def encode_from_tokens_scheduled(self, tokens: str) -> list:
        gen = torch.Generator().manual_seed(sum(map(ord, tokens)) + len(tokens))
        return [[torch.randn(1, 7, 32, generator=gen), {}]]


@pytest.mark.comfyui
@pytest.mark.parametrize(("sampler", "cfg"), [("euler", 5.0), ("heun", 1.0)])
def test_in_comfyui_the_inspector_records_every_step_and_branch(patch, nodes, comfy_tiny_model, sampler, cfg):
    model = patch.patch_model_with_style_inject(comfy_tiny_model, random_expert())
    out = nodes.SelmaRouterInspector().inspect(
        [model], [FakeClip()], ["a fox\na lighthouse at dusk"], [3], [3], [cfg], [sampler], ["normal"], [64], [64]
    )
    heatmaps, embedding, text = out["result"]
    report = json.loads(text)
    probabilities = torch.tensor(report["probabilities"])
    assert probabilities.shape == (2, 3, 2, 30, 3)  # heun: its second evaluations share the next step's sigma
    assert torch.allclose(probabilities.sum(-1), torch.ones(2, 3, 2, 30), atol=1e-5)
    assert report["layers"][0] == "down_blocks.0.attentions.0.proj_in"  # forward order, diffusers names
    assert heatmaps.shape[0] == 2 and heatmaps.shape[-1] == 3 and embedding.shape[0] == 1
    assert out["ui"][nodes.UI_KEY][0]["steps"] == 3
    assert not patch.style_inject_layers_of(model)[report["layers"][0]].router_observers  # recorder detached
