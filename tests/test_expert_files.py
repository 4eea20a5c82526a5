"""LoRA expert files and the UNet name map, on tiny SD / SDXL UNets and SD1.5 / SDXL-size UNets on the meta device."""

from __future__ import annotations

import logging
import os
import sys

import pytest
import torch
from diffusers import UNet2DConditionModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors import safe_open
from safetensors.torch import save_file

from selma import __version__
from selma.experts.lora_expert import LoraExpert, LoraModule
from selma.experts.lora_files import (
    FORMAT,
    apply_lora_expert,
    check_expert_fits,
    expert_to_ldm_names,
    fingerprint_unet,
    load_lora_expert,
    lora_expert_from_peft,
    save_lora_expert,
)
from selma.models.unet_names import (
    FAMILY_LDM_CONFIGS,
    UnetLayout,
    diffusers_to_ldm,
    dotted_name,
    ldm_to_diffusers,
)
from selma.testing.tiny_models import build_sd15_unet, build_tiny_sd, build_tiny_sdxl, sd15_unet_config

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
BUILDERS = {"sd": build_tiny_sd, "sdxl": build_tiny_sdxl}

SDXL_CONFIG = {  # SDXL base 1.0's UNet, written out
    "sample_size": 128,
    "block_out_channels": [320, 640, 1280],
    "layers_per_block": 2,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "transformer_layers_per_block": [1, 2, 10],
    "cross_attention_dim": 2048,
    "attention_head_dim": [5, 10, 20],
    "use_linear_projection": True,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
}
SD2_CONFIG = {**sd15_unet_config(), "cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20]}
SD2_CONFIG["use_linear_projection"] = True


def meta_unet(config: dict) -> UNet2DConditionModel:
    with torch.device("meta"):
        return UNet2DConditionModel(**config)


def target_modules(unet: torch.nn.Module) -> list[str]:
    """The attention projections SELMA adapts, in model order."""
    return [n for n, m in unet.named_modules() if n.endswith(TARGETS) and isinstance(m, torch.nn.Linear)]


def random_expert(unet, *, rank=4, alpha=8.0, mixed=False, dtype=torch.float32, seed=0, device="cpu") -> LoraExpert:
    """Random non-zero factors on every targeted module; `mixed` varies rank (to_v) and alpha (attn2) per module."""
    generator = torch.Generator().manual_seed(seed)
    modules = {}
    for name in target_modules(unet):
        layer = unet.get_submodule(name)
        r = 2 if mixed and name.endswith("to_v") else rank
        a = 3.0 if mixed and ".attn2." in name else alpha
        if device == "meta":
            down, up = (
                torch.empty(r, layer.in_features, device="meta"),
                torch.empty(layer.out_features, r, device="meta"),
            )
        else:
            down = (torch.randn(r, layer.in_features, generator=generator) * 0.2).to(dtype)
            up = (torch.randn(layer.out_features, r, generator=generator) * 0.2).to(dtype)
        modules[name] = LoraModule(down=down, up=up, alpha=a)
    return LoraExpert(modules=modules)


def assert_same_expert(actual: LoraExpert, expected: LoraExpert) -> None:
    assert set(actual.modules) == set(expected.modules)
    for name, module in expected.modules.items():
        got = actual.modules[name]
        assert got.down.dtype == module.down.dtype and torch.equal(got.down, module.down), name
        assert got.up.dtype == module.up.dtype and torch.equal(got.up, module.up), name
        assert got.alpha == module.alpha, name


def unet_forward(unet: UNet2DConditionModel) -> torch.Tensor:
    """The UNet's output on fixed small random inputs (latents, text states, SDXL's added conditions)."""
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(1, 4, 8, 8, generator=generator)
    states = torch.randn(1, 8, unet.config.cross_attention_dim, generator=generator)
    kwargs = {}
    if unet.config.addition_embed_type == "text_time":
        text_embeds = torch.randn(1, 32, generator=generator)
        kwargs["added_cond_kwargs"] = {"text_embeds": text_embeds, "time_ids": torch.randn(1, 6, generator=generator)}
    with torch.no_grad():
        return unet(sample, torch.tensor([500]), states, **kwargs).sample


def merged_reference(unet: UNet2DConditionModel, expert: LoraExpert) -> UNet2DConditionModel:
    """W += alpha/r · up @ down written into the weights by hand: the update every loader must reproduce."""
    with torch.no_grad():
        for name, module in expert.modules.items():
            weight = unet.get_submodule(name).weight
            weight += module.delta().reshape(weight.shape)
    return unet


# ------------------------------------------------------------------------------------------ saving and loading


@pytest.mark.parametrize(("model", "dtype"), [("sd", torch.float32), ("sdxl", torch.float16)])
def test_round_trip_is_exact(tmp_path, model, dtype):
    unet = BUILDERS[model]().unet
    expert = random_expert(unet, dtype=dtype)
    metadata = {"skill": "counting", "config": {"r": 4, "targets": list(TARGETS)}, "steps": 500, "seed": 7}
    metadata["base_model"] = fingerprint_unet(unet)
    path = save_lora_expert(tmp_path / "counting.safetensors", expert, metadata)

    loaded = load_lora_expert(path)
    assert_same_expert(loaded, expert)
    assert loaded.metadata == {**metadata, "method": "lora", "format": FORMAT, "version": __version__}
    again = load_lora_expert(save_lora_expert(tmp_path / "again.safetensors", loaded))
    assert_same_expert(again, expert)
    assert again.metadata == loaded.metadata
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.safetensors", "counting.safetensors"]


@pytest.mark.parametrize(("model", "count"), [("sd", 48), ("sdxl", 96)])
def test_keys_follow_kohya_naming_for_every_targeted_module(tmp_path, model, count):
    unet = BUILDERS[model]().unet
    path = save_lora_expert(tmp_path / "e.safetensors", random_expert(unet))
    names = target_modules(unet)
    expected = {
        f"lora_unet_{name.replace('.', '_')}.{part}"
        for name in names
        for part in ("lora_down.weight", "lora_up.weight", "alpha")
    }
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == expected
        header = f.metadata()
    assert len(names) == count
    assert header["selma.format"] == "lora/1" and header["selma.method"] == "lora"
    assert header["selma.version"] == __version__
    assert header["ss_network_module"] == "networks.lora"
    assert (header["ss_network_dim"], header["ss_network_alpha"]) == ("4", "8.0")


@pytest.mark.parametrize(
    ("width", "fields"),
    [(768, {"ss_v2": "False"}), (1024, {"ss_v2": "True"}), (2048, {"ss_base_model_version": "sdxl_base_v1-0"})],
)
def test_header_tells_a1111_the_base_model_family(tmp_path, width, fields):
    # A1111 files a LoRA with metadata but no marker under SD1; the cross-attention width says which family it is.
    name = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
    expert = LoraExpert({name: LoraModule(down=torch.zeros(1, width), up=torch.zeros(640, 1), alpha=1.0)})
    with safe_open(str(save_lora_expert(tmp_path / "e.safetensors", expert)), framework="pt") as f:
        header = f.metadata()
    assert {k: header[k] for k in ("ss_v2", "ss_base_model_version") if k in header} == fields


def test_mixed_alphas_are_written_as_one_alpha_with_the_same_update(tmp_path):
    expert = random_expert(build_tiny_sd().unet, mixed=True)
    loaded = load_lora_expert(save_lora_expert(tmp_path / "e.safetensors", expert))
    assert {m.alpha for m in loaded.modules.values()} == {8.0}
    assert loaded.ranks == expert.ranks
    for name, module in expert.modules.items():
        torch.testing.assert_close(loaded.modules[name].delta(), module.delta(), rtol=1e-6, atol=1e-7)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("model", ["sd", "sdxl"])
def test_diffusers_load_lora_weights_matches_the_in_memory_adapter(tmp_path, model):
    build = BUILDERS[model]
    expert = random_expert(build().unet, mixed=True)
    path = save_lora_expert(tmp_path / "e.safetensors", expert)

    pipe = build()
    base = unet_forward(pipe.unet)
    records = _Records()  # diffusers' loggers do not propagate to the root logger, so caplog would miss them
    logging.getLogger("diffusers").addHandler(records)
    try:
        pipe.load_lora_weights(str(path), adapter_name="from_file")
    finally:
        logging.getLogger("diffusers").removeHandler(records)
    from_file = unet_forward(pipe.unet)
    in_memory = unet_forward(apply_lora_expert(build().unet, expert))
    reference = unet_forward(merged_reference(build().unet, expert))

    assert (from_file - base).abs().max() > 1e-2  # the expert does change the output
    torch.testing.assert_close(from_file, in_memory, rtol=0, atol=1e-5)
    torch.testing.assert_close(in_memory, reference, rtol=0, atol=1e-5)
    # every key was consumed: no key complaints, and diffusers' adapter holds exactly the expert's updates
    assert not [m for m in records.messages if "unexpected keys" in m or "missing keys" in m], records.messages
    consumed = lora_expert_from_peft(pipe.unet, "from_file")
    assert set(consumed.modules) == set(expert.modules)
    for name, module in expert.modules.items():
        torch.testing.assert_close(consumed.modules[name].delta(), module.delta(), rtol=1e-6, atol=1e-7)


@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")  # two adapters on purpose
def test_apply_then_read_back_gives_the_expert_and_scale_multiplies_alpha():
    unet = build_tiny_sd().unet
    expert = random_expert(unet, mixed=True)
    apply_lora_expert(unet, expert)
    assert_same_expert(lora_expert_from_peft(unet, "selma"), expert)
    apply_lora_expert(unet, expert, adapter_name="halved", scale=0.5)
    assert {n: m.alpha for n, m in lora_expert_from_peft(unet, "halved").modules.items()} == {
        n: m.alpha * 0.5 for n, m in expert.modules.items()
    }


def test_reading_through_training_wrappers_gives_the_unets_own_names():
    unet = build_tiny_sd().unet
    expert = random_expert(unet)
    apply_lora_expert(unet, expert)
    # what DDP (module.) around torch.compile (_orig_mod.) around the UNet looks like to named_modules()
    wrapped = torch.nn.ModuleDict({"module": torch.nn.ModuleDict({"_orig_mod": unet})})
    assert_same_expert(lora_expert_from_peft(wrapped, "selma"), expert)


def test_a_trained_peft_adapter_becomes_an_expert_that_reproduces_it(tmp_path):
    # What the trainer does: inject with PEFT, train (here: gaussian init, up made non-zero), read out, save.
    unet = build_tiny_sd().unet
    unet.add_adapter(LoraConfig(r=4, lora_alpha=8, target_modules=list(TARGETS), init_lora_weights="gaussian"))
    with torch.no_grad():
        for name in target_modules(unet):
            torch.nn.init.normal_(unet.get_submodule(name).lora_B["default"].weight, std=0.2)
    trained = unet_forward(unet)
    expert = lora_expert_from_peft(unet)
    assert set(expert.modules) == set(target_modules(build_tiny_sd().unet))
    assert {m.alpha for m in expert.modules.values()} == {8.0}
    reloaded = load_lora_expert(save_lora_expert(tmp_path / "e.safetensors", expert))
    torch.testing.assert_close(unet_forward(apply_lora_expert(build_tiny_sd().unet, reloaded)), trained)


def test_linear_factors_apply_to_a_1x1_conv():
    # SD1.x has 1x1-conv proj_in/proj_out where SD2/SDXL have linear ones; their LoRAs are interchangeable.
    unet = build_tiny_sd().unet
    name = "down_blocks.0.attentions.0.proj_in"
    assert isinstance(unet.get_submodule(name), torch.nn.Conv2d)
    generator = torch.Generator().manual_seed(0)
    expert = LoraExpert({name: LoraModule(torch.randn(2, 32, generator=generator), torch.randn(32, 2), alpha=2.0)})
    torch.testing.assert_close(
        unet_forward(apply_lora_expert(unet, expert)), unet_forward(merged_reference(build_tiny_sd().unet, expert))
    )


# ------------------------------------------------------------------------------------------ foreign files


def _kohya(modules: dict[str, LoraModule], prefix: str = "lora_unet_", dots: bool = False) -> dict:
    state = {}
    for name, module in modules.items():
        key = prefix + (name if dots else name.replace(".", "_"))
        state |= {f"{key}.lora_down.weight": module.down, f"{key}.lora_up.weight": module.up}
        state[f"{key}.alpha"] = torch.tensor(module.alpha)
    return state


def _write_foreign(kind: str, expert: LoraExpert, unet, tmp_path):
    """A file as another tool writes it; returns its path and whether it carries alphas."""
    path = tmp_path / f"{kind}.safetensors"
    if kind == "kohya-diffusers-names":
        state = _kohya(expert.modules)
        state["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"] = torch.zeros(4, 32)
        state["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight"] = torch.zeros(32, 4)
    elif kind == "kohya-ldm-names":
        state = _kohya(expert_to_ldm_names(expert, unet.config))
    elif kind == "comfyui-ldm-names":
        state = _kohya(expert_to_ldm_names(expert, unet.config), prefix="diffusion_model.", dots=True)
    elif kind == "peft-by-diffusers":
        apply_lora_expert(unet, expert, adapter_name="x")
        layers = get_peft_model_state_dict(unet, adapter_name="x")
        metadata = unet.peft_config["x"].to_dict()
        build_tiny_sd().save_lora_weights(
            tmp_path / "peft", unet_lora_layers=layers, unet_lora_adapter_metadata=metadata
        )
        return tmp_path / "peft" / "pytorch_lora_weights.safetensors", True
    elif kind == "new-diffusers":
        state = {}
        for name, module in expert.modules.items():
            state |= {f"unet.{name}.lora.down.weight": module.down, f"unet.{name}.lora.up.weight": module.up}
        save_file(state, path)
        return path, False
    elif kind == "diffusers-attn-processor":
        state = {}
        for name, module in expert.modules.items():
            head, target = name.removesuffix(".0").rsplit(".", 1)  # attn1.to_out.0 -> attn1.processor.to_out_lora
            key = f"unet.{head}.processor.{target}_lora"
            state |= {f"{key}.down.weight": module.down, f"{key}.up.weight": module.up}
        save_file(state, path)
        return path, False
    save_file(state, path)
    return path, True


FOREIGN = [
    ("sd", "kohya-diffusers-names"),
    ("sd", "kohya-ldm-names"),
    ("sdxl", "kohya-ldm-names"),
    ("sd", "comfyui-ldm-names"),
    ("sd", "peft-by-diffusers"),
    ("sd", "new-diffusers"),
    ("sd", "diffusers-attn-processor"),
]


@pytest.mark.parametrize(("model", "kind"), FOREIGN)
def test_foreign_formats_load_to_the_same_expert(tmp_path, caplog, model, kind):
    unet = BUILDERS[model]().unet
    expert = random_expert(unet)
    path, has_alpha = _write_foreign(kind, expert, unet, tmp_path)
    if not has_alpha:  # no alpha in the file means scale 1 (alpha = rank), as every loader reads it
        expert = LoraExpert({n: LoraModule(m.down, m.up, alpha=float(m.rank)) for n, m in expert.modules.items()})
    with caplog.at_level(logging.WARNING, logger="selma.experts.lora_files"):
        loaded = load_lora_expert(path)
    assert_same_expert(loaded, expert)
    assert "source_format" in loaded.metadata
    if kind == "kohya-diffusers-names":
        assert "skipped 2 text-encoder keys" in caplog.text
        assert loaded.metadata["source_format"] == "kohya"


def test_ldm_names_of_another_layout_load_with_its_config(tmp_path):
    unet = build_tiny_sdxl().unet
    expert = random_expert(unet)
    path = tmp_path / "e.safetensors"
    save_file(_kohya(expert_to_ldm_names(expert, unet.config)), path)
    assert_same_expert(load_lora_expert(path, unet_config=unet.config), expert)


# ------------------------------------------------------------------------------------------ bad files


def _write(tmp_path, state, metadata=None):
    path = tmp_path / "bad.safetensors"
    save_file(state, path, metadata=metadata)
    return path


A = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"


def _write_text(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_text("not a tensor in sight", encoding="utf-8")
    return path


BAD_FILES = {
    "not safetensors": (_write_text, ValueError, "is not a readable .safetensors file"),
    "missing file": (lambda p: p / "nothing.safetensors", FileNotFoundError, "no expert file at"),
    "down without up": (lambda p: _write(p, {f"{A}.lora_down.weight": torch.zeros(4, 32)}), ValueError,
                        "has a down factor but no up factor"),
    "up without down": (lambda p: _write(p, {f"{A}.lora_up.weight": torch.zeros(32, 4)}), ValueError,
                        "has a up factor but no down factor"),
    "ranks disagree": (lambda p: _write(p, {f"{A}.lora_down.weight": torch.zeros(4, 32),
                                            f"{A}.lora_up.weight": torch.zeros(32, 2)}), ValueError,
                       "disagree on the rank"),
    "unknown key": (lambda p: _write(p, {"model.weight": torch.zeros(2)}), ValueError, "not a LoRA key we know"),
    "dora": (lambda p: _write(p, {f"{A}.dora_scale": torch.zeros(1, 32)}), ValueError, "is a DoRA file"),
    "loha": (lambda p: _write(p, {f"{A}.hada_w1_a": torch.zeros(4, 4)}), ValueError, r"is a LoHa \(LyCORIS\) file"),
    "text encoder only": (lambda p: _write(p, {"lora_te_text_model_encoder_layers_0_mlp_fc1.alpha": torch.ones(())}),
                          ValueError, "holds no UNet LoRA weights"),
    "flux": (lambda p: _write(p, _kohya({"double_blocks.0.img_attn.proj": LoraModule(torch.zeros(1, 2),
                                                                                    torch.zeros(2, 1), 1.0)})),
             ValueError, "is not part of an SD-family UNet"),
    "ldm names of no family": (lambda p: _write(p, _kohya({"input_blocks.1.7.proj_in": LoraModule(
        torch.zeros(1, 2), torch.zeros(2, 1), 1.0)})), ValueError, "fit neither of"),
    "styleinject": (lambda p: _write(p, {f"{A}.alpha": torch.tensor(1.0)}, {"selma.format": "styleinject/1"}),
                    ValueError, "not a LoRA expert"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_give_clear_errors(tmp_path, case):
    make, error, match = BAD_FILES[case]
    with pytest.raises(error, match=match):
        load_lora_expert(make(tmp_path))


def _one_module_expert(name="down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", alpha=1.0):
    return LoraExpert({name: LoraModule(torch.zeros(1, 32), torch.zeros(32, 1), alpha=alpha)})


def test_save_refuses_another_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"expert files end in \.safetensors"):
        save_lora_expert(tmp_path / "e.pt", _one_module_expert())


def test_save_refuses_an_empty_expert(tmp_path):
    with pytest.raises(ValueError, match="the expert has no modules"):
        save_lora_expert(tmp_path / "e.safetensors", LoraExpert({}))


def test_save_refuses_modules_outside_the_unet(tmp_path):
    with pytest.raises(ValueError, match="'text_model.encoder.layers.0.mlp.fc1' is not a diffusers UNet module name"):
        save_lora_expert(tmp_path / "e.safetensors", _one_module_expert("text_model.encoder.layers.0.mlp.fc1"))


def test_save_refuses_a_non_finite_alpha(tmp_path):
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        save_lora_expert(tmp_path / "e.safetensors", _one_module_expert(alpha=float("nan")))


def test_save_refuses_a_non_string_skill(tmp_path):
    with pytest.raises(ValueError, match=r"metadata\['skill'\] must be a string, got int 3"):
        save_lora_expert(tmp_path / "e.safetensors", _one_module_expert(), {"skill": 3})


def test_save_refuses_metadata_that_is_not_json_and_keeps_the_old_file(tmp_path):
    path = save_lora_expert(tmp_path / "e.safetensors", _one_module_expert(), {"skill": "old"})
    with pytest.raises(ValueError, match=r"metadata\['when'\] cannot be written as JSON"):
        save_lora_expert(path, _one_module_expert(), {"when": object()})
    assert load_lora_expert(path).metadata["skill"] == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["e.safetensors"]  # no temp file left behind


# ------------------------------------------------------------------------------------------ fitting and fingerprints


def test_an_sdxl_expert_on_an_sd_unet_names_the_first_module():
    expert = random_expert(build_tiny_sdxl().unet)
    first = next(iter(expert.modules))
    with pytest.raises(ValueError, match=rf"module '{first}' \(weight shape \(64, 64\)\) does not exist in the model"):
        apply_lora_expert(build_tiny_sd().unet, expert)


def test_wrong_shapes_name_the_first_module_and_both_shapes():
    # An SD2 expert on an SD1.5 UNet: same modules and ranks, but 1024-wide text states instead of 768.
    expert = random_expert(meta_unet(SD2_CONFIG), device="meta")
    sd15 = build_sd15_unet()
    match = (
        r"module 'down_blocks\.0\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k' has weight shape \(320, 1024\) "
        r"in the expert but \(320, 768\) in the model\. The expert was trained for another architecture"
    )
    with pytest.raises(ValueError, match=match):
        check_expert_fits(expert, sd15)
    with pytest.raises(ValueError, match=match):
        check_expert_fits(expert, {n: p.shape for n, p in sd15.named_parameters()})


def test_a_fitting_expert_passes_against_the_model_and_its_shapes():
    unet = build_tiny_sdxl().unet
    expert = random_expert(unet)
    check_expert_fits(expert, unet)
    check_expert_fits(expert, {n: p.shape for n, p in unet.named_parameters()})
    apply_lora_expert(unet, expert)
    check_expert_fits(expert, unet)  # a PEFT-wrapped layer is checked against its base layer


def test_applying_twice_under_one_name_is_refused():
    unet = build_tiny_sd().unet
    apply_lora_expert(unet, _one_module_expert())
    with pytest.raises(ValueError, match="already has an adapter named 'selma'"):
        apply_lora_expert(unet, _one_module_expert())


def test_reading_a_missing_adapter_lists_the_adapters():
    unet = apply_lora_expert(build_tiny_sd().unet, _one_module_expert())
    with pytest.raises(ValueError, match=r"no LoRA adapter named 'default' \(adapters found: selma\)"):
        lora_expert_from_peft(unet)


def test_fingerprint_is_architecture_level():
    unet = build_tiny_sd().unet
    fingerprint = fingerprint_unet(unet)
    assert fingerprint.startswith("UNet2DConditionModel:") and len(fingerprint.split(":")[1]) == 16
    assert fingerprint_unet(unet.config) == fingerprint
    assert fingerprint_unet(build_tiny_sd(seed=1).unet) == fingerprint  # other weights, same architecture
    assert fingerprint_unet(apply_lora_expert(unet, random_expert(unet))) == fingerprint
    assert fingerprint_unet(build_tiny_sdxl().unet) != fingerprint
    assert fingerprint_unet(sd15_unet_config()) == fingerprint_unet(build_sd15_unet())
    assert fingerprint_unet(SD2_CONFIG) != fingerprint_unet(sd15_unet_config())


# ------------------------------------------------------------------------------------------ diffusers <-> LDM names

NAMED_UNETS = {
    "tiny-sd": lambda: build_tiny_sd().unet,
    "tiny-sdxl": lambda: build_tiny_sdxl().unet,
    "sd15": build_sd15_unet,
    "sdxl": lambda: meta_unet(SDXL_CONFIG),
}


@pytest.mark.parametrize("model", list(NAMED_UNETS))
def test_name_map_is_a_bijection(model):
    unet = NAMED_UNETS[model]()
    layout = UnetLayout.from_config(unet.config)
    names = [n for n, _ in unet.named_parameters()] + [n for n, m in unet.named_modules() if n and m._parameters]
    ldm = {name: diffusers_to_ldm(name, layout) for name in names}
    assert len(set(ldm.values())) == len(names)
    for name, ldm_name in ldm.items():
        assert ldm_to_diffusers(ldm_name, layout) == name
        assert dotted_name(name.replace(".", "_")) == name  # kohya's flattening is undone for both spellings
        assert dotted_name(ldm_name.replace(".", "_")) == ldm_name


def _ldm_shapes(unet) -> dict[str, tuple]:
    return {diffusers_to_ldm(n, unet.config): tuple(p.shape) for n, p in unet.state_dict().items()}


def test_sd15_names_match_the_ldm_checkpoint_layout():
    unet = build_sd15_unet()
    shapes = _ldm_shapes(unet)
    assert len(shapes) == 686  # the tensors of SD1.5's model.diffusion_model
    blocks = {".".join(k.split(".")[:3]) for k in shapes if k.startswith(("input_blocks", "output_blocks"))}
    attention = {1, 2, 4, 5, 7, 8}
    expected = {f"input_blocks.{n}.0" for n in range(12)} | {f"input_blocks.{n}.1" for n in attention}
    expected |= {f"output_blocks.{n}.0" for n in range(12)} | {f"output_blocks.{n}.1" for n in range(2, 12)}
    expected |= {"output_blocks.5.2", "output_blocks.8.2"}
    assert blocks == expected
    assert {k.split(".")[1] for k in shapes if k.startswith("middle_block")} == {"0", "1", "2"}
    for ldm_name, diffusers_name in [
        ("input_blocks.1.1", "down_blocks.0.attentions.0"),
        ("output_blocks.11.1", "up_blocks.3.attentions.2"),
        ("middle_block.1", "mid_block.attentions.0"),
        ("input_blocks.3.0.op", "down_blocks.0.downsamplers.0.conv"),
        ("output_blocks.2.1.conv", "up_blocks.0.upsamplers.0.conv"),
        ("output_blocks.8.2.conv", "up_blocks.2.upsamplers.0.conv"),
        ("input_blocks.4.0.skip_connection", "down_blocks.1.resnets.0.conv_shortcut"),
        ("middle_block.2.emb_layers.1", "mid_block.resnets.1.time_emb_proj"),
        ("out.2", "conv_out"),
    ]:
        assert ldm_to_diffusers(ldm_name, unet.config) == diffusers_name
        assert diffusers_to_ldm(diffusers_name, unet.config) == ldm_name
    assert shapes["input_blocks.4.0.skip_connection.weight"] == (640, 320, 1, 1)
    assert shapes["output_blocks.8.0.skip_connection.weight"] == (640, 960, 1, 1)
    assert shapes["output_blocks.2.1.conv.weight"] == (1280, 1280, 3, 3)
    assert shapes["input_blocks.7.1.transformer_blocks.0.attn2.to_k.weight"] == (1280, 768)
    assert shapes["time_embed.0.weight"] == (1280, 320)


def test_sdxl_names_match_the_ldm_checkpoint_layout():
    shapes = _ldm_shapes(meta_unet(SDXL_CONFIG))
    assert len(shapes) == 1680  # the tensors of SDXL base's model.diffusion_model
    assert max(int(k.split(".")[1]) for k in shapes if k.startswith("input_blocks")) == 8
    assert max(int(k.split(".")[1]) for k in shapes if k.startswith("output_blocks")) == 8
    assert shapes["label_emb.0.0.weight"] == (1280, 2816)
    assert shapes["input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight"] == (640, 2048)
    assert shapes["middle_block.1.transformer_blocks.9.attn1.to_q.weight"] == (1280, 1280)
    assert shapes["output_blocks.0.1.transformer_blocks.9.ff.net.0.proj.weight"] == (10240, 1280)
    assert shapes["output_blocks.2.2.conv.weight"] == (1280, 1280, 3, 3)  # after the transformer: index 2
    assert shapes["output_blocks.5.2.conv.weight"] == (640, 640, 3, 3)
    assert "input_blocks.1.1.proj_in.weight" not in shapes  # no attention on the first level


def test_comfyui_unet_configs_give_the_diffusers_layouts():
    assert UnetLayout.from_config(FAMILY_LDM_CONFIGS["SD1.x/SD2.x"]) == UnetLayout.from_config(sd15_unet_config())
    assert UnetLayout.from_config(FAMILY_LDM_CONFIGS["SDXL"]) == UnetLayout.from_config(SDXL_CONFIG)
    tiny = {"num_res_blocks": [2, 2], "channel_mult": [1, 2], "transformer_depth": [1, 1, 0, 0]}
    tiny |= {"transformer_depth_output": [1, 1, 1, 0, 0, 0], "transformer_depth_middle": 1}
    assert UnetLayout.from_config(tiny) == UnetLayout.from_config(build_tiny_sd().unet)


def test_expert_to_ldm_names_gives_comfyui_module_names():
    unet = build_tiny_sd().unet
    expert = random_expert(unet)
    ldm = expert_to_ldm_names(expert, unet.config)
    assert len(ldm) == len(expert.modules)
    name = "down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_out.0"
    assert ldm["input_blocks.2.1.transformer_blocks.0.attn2.to_out.0"] is expert.modules[name]
    assert ldm["output_blocks.5.1.transformer_blocks.0.attn1.to_q"].down.shape == (4, 32)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("down_blocks.1.attentions.0.proj_in", r"down_blocks\.1 has no attention"),
        ("down_blocks.0.attentions.2.proj_in", r"down_blocks\.0 has 2 layers"),
        ("down_blocks.0.attentions.0.transformer_blocks.1.attn1.to_q", r"has 1 transformer block\(s\)"),
        ("down_blocks.1.downsamplers.0.conv", "the last of the down_blocks has no downsamplers"),
        ("add_embedding.linear_1", r"no added \(text_time\) embedding"),
        ("down_blocks.0.resnets.0.conv9", "a resnet has no child 'conv9'"),
        ("text_model.encoder", "not a diffusers UNet2DConditionModel module name"),
    ],
)
def test_names_a_unet_lacks_are_refused(name, match):
    with pytest.raises(ValueError, match=match):
        diffusers_to_ldm(name, build_tiny_sd().unet.config)


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        (
            {**sd15_unet_config(), "down_block_types": ["SimpleCrossAttnDownBlock2D"] * 4},
            ValueError,
            "down_block_types contains 'SimpleCrossAttnDownBlock2D'",
        ),
        ({"hidden_size": 3}, ValueError, "neither a diffusers UNet2DConditionModel config"),
        (3, TypeError, "expected a UNet config mapping or a UNet, got int"),
    ],
)
def test_configs_of_other_unets_are_refused(config, error, match):
    with pytest.raises(error, match=match):
        UnetLayout.from_config(config)


@pytest.mark.comfyui
@pytest.mark.skipif(not os.environ.get("COMFYUI_PATH"), reason="set COMFYUI_PATH to a ComfyUI checkout")
def test_ldm_names_agree_with_comfyui():
    # ComfyUI's own map is what stock LoraLoader uses to resolve lora_unet_<diffusers name> keys.
    sys.path.insert(0, os.environ["COMFYUI_PATH"])
    from comfy.utils import unet_to_diffusers

    for config in FAMILY_LDM_CONFIGS.values():
        layout = UnetLayout.from_config(config)
        for diffusers_name, ldm_name in unet_to_diffusers(config).items():
            if diffusers_name.startswith(("class_embedding", "add_embedding")) and not layout.has_add_embedding:
                continue
            if diffusers_name.startswith("class_embedding"):
                # ComfyUI lists both diffusers spellings of label_emb; an SDXL UNet names it add_embedding
                assert ldm_name == unet_to_diffusers(config)[diffusers_name.replace("class_", "add_")]
                continue
            try:
                ours = diffusers_to_ldm(diffusers_name, layout)
            except ValueError:
                # ComfyUI also lists samplers of the deepest level, which the model does not have
                assert "samplers" in diffusers_name, diffusers_name
                continue
            assert ours == ldm_name


def test_kohya_class_embedding_keys_load_as_the_added_embedding(tmp_path):
    """Stock LoraLoader maps class_embedding.linear_{1,2} and add_embedding.linear_{1,2} alike (label_emb); so do we,
    and the module saves back under the name ComfyUI resolves for SDXL."""
    from safetensors.torch import save_file

    base = "lora_unet_class_embedding_linear_1"
    gen = torch.Generator().manual_seed(0)
    down, up = torch.randn(2, 16, generator=gen), torch.randn(8, 2, generator=gen)
    tensors = {f"{base}.lora_down.weight": down, f"{base}.lora_up.weight": up, f"{base}.alpha": torch.tensor(2.0)}
    save_file(tensors, str(tmp_path / "kohya.safetensors"))
    expert = load_lora_expert(tmp_path / "kohya.safetensors")
    assert list(expert.modules) == ["add_embedding.linear_1"]
    module = expert.modules["add_embedding.linear_1"]
    assert torch.equal(module.up, up) and module.alpha == 2
    from selma.experts.lora_files import kohya_state_dict

    assert "lora_unet_add_embedding_linear_1.lora_up.weight" in kohya_state_dict(expert)
