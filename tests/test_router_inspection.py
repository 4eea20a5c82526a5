"""Router inspection on the tiny SD pipeline: what is recorded (per prompt, step, cond/uncond, layer), that it is
the router's own output, the JSON round trip, the two pictures, the bare-UNet path and `selma inspect`."""

from __future__ import annotations

import copy
import functools
import json

import pytest
import torch
from PIL import Image

from selma.cli import main
from selma.experts.style_inject_save import save_style_inject_expert
from selma.inspection.router_plots import (
    EMBEDDING_SIZE,
    HEATMAP_SIZE,
    embedding,
    embedding_coordinates,
    heatmap,
    heatmap_colours,
)
from selma.inspection.router_report import BRANCHES, RouterReport, inspect_router
from selma.testing.tiny_models import build_tiny_sd
from selma.tuners.style_inject import StyleInjectConfig, style_inject_layers

PROMPTS = ["two red apples", "a cat on a mat", "a blue car"]
STEPS = 3


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: two threads oversubscribe it
    yield
    torch.set_num_threads(threads)


@functools.cache
def _pipe():
    pipe = build_tiny_sd(seed=0)
    config = StyleInjectConfig(r=4, num_styles=3, target_modules=["to_q", "to_v"], init_weights=False)
    torch.manual_seed(0)
    pipe.unet.add_adapter(config)
    with torch.no_grad():  # routers far from uniform, so the pictures and the checks have something to show
        for layer in style_inject_layers(pipe.unet).values():
            layer.styleinject_router["default"].weight.mul_(20)
    return pipe


@pytest.fixture(scope="module")
def report() -> RouterReport:
    calls = []
    result = inspect_router(
        _pipe(), PROMPTS, steps=STEPS, guidance=7.5, seed=0, on_progress=lambda *a: calls.append(a)
    )
    assert calls == [(s, STEPS) for s in range(1, STEPS + 1)]
    return result


def test_probabilities_have_one_row_per_prompt_step_branch_and_layer_and_sum_to_one(report):
    assert report.probabilities.shape == (len(PROMPTS), STEPS, 2, 24, 3)
    torch.testing.assert_close(report.probabilities.sum(-1), torch.ones(len(PROMPTS), STEPS, 2, 24))
    assert (report.probabilities > 0).all()
    assert report.layers[0] == "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"  # call order
    assert report.timesteps == sorted(report.timesteps, reverse=True) and len(report.timesteps) == STEPS
    assert report.summary()["row_sum_max_error"] < 1e-6


def test_branches_are_the_cfg_halves_as_diffusers_orders_them(report):
    cross_v = report.layers.index("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v")
    # attn2.to_v routes on the text alone: the uncond rows of every prompt are the empty prompt's, the cond differ.
    uncond, cond = report.branch("uncond"), report.branch("cond")
    torch.testing.assert_close(
        report.probabilities[0, :, uncond, cross_v], report.probabilities[1, :, uncond, cross_v]
    )
    assert not torch.allclose(report.probabilities[0, :, cond, cross_v], report.probabilities[1, :, cond, cross_v])
    # and the cond row is the router's softmax of that prompt's mean text embedding
    pipe = _pipe()
    text = pipe.encode_prompt(PROMPTS[1], "cpu", 1, False)[0]
    router = style_inject_layers(pipe.unet)[report.layers[cross_v]].styleinject_router["default"]
    with torch.no_grad():
        expected = torch.softmax(router(text.mean(1)), -1)[0]
    torch.testing.assert_close(report.probabilities[1, 0, cond, cross_v], expected)


def test_the_json_round_trips_exactly(report, tmp_path):
    data = json.loads(json.dumps(report.to_json()))
    assert data["branches"] == list(BRANCHES) == ["cond", "uncond"]
    assert (len(data["probabilities"]), len(data["probabilities"][0]), len(data["probabilities"][0][0])) == (3, 3, 2)
    assert len(data["probabilities"][0][0][0]) == 24 and len(data["probabilities"][0][0][0][0]) == 3
    assert data["summary"]["per_prompt"][2]["prompt"] == PROMPTS[2]
    back = RouterReport.from_json(data)
    assert torch.equal(back.probabilities, report.probabilities)
    assert (back.layers, back.timesteps, back.prompts, back.settings) == (
        report.layers,
        report.timesteps,
        report.prompts,
        report.settings,
    )
    assert torch.equal(RouterReport.load(report.save(tmp_path / "router.json")).probabilities, report.probabilities)


def test_the_pictures_have_their_sizes_and_show_the_preferred_style(report):
    assert heatmap(report, 1, "uncond").size == HEATMAP_SIZE
    assert heatmap(report, 0, size=(400, 300)).size == (400, 300)
    assert embedding(report).size == EMBEDDING_SIZE
    pixels = heatmap_colours(report, 0, "cond")
    assert pixels.shape == (24, STEPS, 3) and 0 <= pixels.min() and pixels.max() <= 1
    one_hot = RouterReport(["l"], [1.0], ["p"], torch.tensor([[[[[0.0, 1.0, 0.0]], [[1 / 3, 1 / 3, 1 / 3]]]]]))
    orange = torch.tensor(heatmap_colours(one_hot, 0, "cond")[0, 0].tolist())
    assert torch.allclose(heatmap_colours(one_hot, 0, "uncond")[0, 0], torch.ones(3))  # uniform: white
    assert orange[0] > 0.9 and orange[2] < 0.2  # style 1 is tab10's orange, at full strength
    with pytest.raises(ValueError, match=r"prompt_index=5 is out of range: the report has 3 prompts"):
        heatmap(report, 5)


def test_the_embedding_is_a_pca_of_the_router_vectors(report):
    coords, explained = embedding_coordinates(report)
    assert coords.shape == (len(PROMPTS), STEPS, 2)
    assert 0 < explained[1] <= explained[0] <= 1
    torch.testing.assert_close(coords.reshape(-1, 2).mean(0), torch.zeros(2), atol=1e-6, rtol=0)  # centred
    vectors = report.probabilities[:, :, 0].reshape(len(PROMPTS) * STEPS, -1).double()
    distances = torch.cdist(vectors, vectors)
    # two components of a rank <= 8 cloud keep most of it: distances shrink, never grow
    assert (torch.cdist(coords.reshape(-1, 2).double(), coords.reshape(-1, 2).double()) <= distances + 1e-6).all()


def test_a_bare_unet_samples_with_given_embeddings():
    pipe = _pipe()
    cond = pipe.encode_prompt(PROMPTS[:2], "cpu", 1, False)[0]
    uncond = pipe.encode_prompt("", "cpu", 1, False)[0]
    result = inspect_router(
        pipe.unet, PROMPTS[:2], steps=2, guidance=5.0, prompt_embeds=cond, negative_prompt_embeds=uncond
    )
    assert result.probabilities.shape == (2, 2, 2, 24, 3)
    torch.testing.assert_close(result.probabilities.sum(-1), torch.ones(2, 2, 2, 24))
    with pytest.raises(ValueError, match=r"a bare UNet has no text encoder: pass prompt_embeds"):
        inspect_router(pipe.unet, PROMPTS, steps=2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(guidance=1.0), r"guidance must be a number > 1, got 1.0: the router is recorded for the cond"),
        (dict(steps=0), r"steps must be an integer >= 1"),
        (dict(prompts=[]), r"prompts must be a non-empty list"),
    ],
)
def test_settings_that_record_nothing_useful_are_refused(kwargs, match):
    arguments = {"prompts": PROMPTS, "steps": 2, "guidance": 7.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        inspect_router(_pipe(), arguments.pop("prompts"), **arguments)


def test_a_model_without_router_is_refused():
    unet = copy.deepcopy(_pipe().unet)
    unet.delete_adapters("default")
    unet.add_adapter(StyleInjectConfig(r=2, num_styles=1, use_dma=False, target_modules=["to_q"]), "sta")
    with pytest.raises(ValueError, match=r"made with use_dma=False\): nothing to record"):
        inspect_router(
            unet, ["a"], steps=1, prompt_embeds=torch.zeros(1, 77, 32), negative_prompt_embeds=torch.zeros(1, 77, 32)
        )


def test_cli_writes_router_json_heatmaps_and_embedding(tmp_path, capsys):
    pipe = build_tiny_sd(tmp_path / "model")
    config = StyleInjectConfig(r=2, num_styles=4, target_modules=["to_v"], init_weights=False)
    pipe.unet.add_adapter(config)
    expert = save_style_inject_expert(tmp_path / "art.safetensors", pipe.unet, config, {"skill": "art"})
    out = tmp_path / "router"
    argv = ["inspect", "--model", str(tmp_path / "model"), "--expert", str(expert), "--prompt", "a red cube"]
    argv += ["--prompt", "a dog", "--steps", "2", "--seed", "3", "-o", str(out)]
    assert main(argv) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "embedding.png",
        "heatmap_00_cond.png",
        "heatmap_00_uncond.png",
        "heatmap_01_cond.png",
        "heatmap_01_uncond.png",
        "router.json",
    ]
    saved = RouterReport.load(out / "router.json")
    assert saved.probabilities.shape == (2, 2, 2, 12, 4) and saved.prompts == ["a red cube", "a dog"]
    assert saved.settings["expert"] == "art.safetensors" and saved.settings["seed"] == 3
    assert Image.open(out / "heatmap_01_uncond.png").size == HEATMAP_SIZE
    assert "12 routers x 2 steps x 2 prompt(s)" in capsys.readouterr().out


def test_many_layers_are_labelled_by_block():
    """SD1.5-size: 16 transformer blocks x 8 projections = 128 rows; one readable label per block."""
    from matplotlib.figure import Figure

    from selma.inspection.router_plots import _label_layers, layer_groups

    blocks = [f"{side}_blocks.{b}.attentions.{a}" for side in ("down", "up") for b in range(4) for a in range(2)]
    names = [f"{blk}.transformer_blocks.0.attn{k}.{p}" for blk in blocks for k in (1, 2)
             for p in ("to_q", "to_k", "to_v", "to_out.0")]  # fmt: skip
    groups = layer_groups(names)
    assert len(names) == 128 and len(groups) == 16
    assert groups[0] == (0, 7, "d0.a0.t0") and groups[-1] == (120, 127, "u3.a1.t0")
    axes = Figure().add_subplot()
    _label_layers(axes, names)
    labels = [t.get_text() for t in axes.get_yticklabels()]
    assert labels[0] == "d0.a0.t0 (8)" and len(labels) == 16
    few = names[:8]
    _label_layers(axes, few)  # few layers: every name
    assert [t.get_text() for t in axes.get_yticklabels()][0] == "d0.a0.t0.attn1.to_q"
    probs = torch.full((1, 2, 2, 128, 4), 0.25)
    assert heatmap(RouterReport(names, [999.0, 1.0], ["p"], probs), 0).size == HEATMAP_SIZE
