"""SelmaApplyExpert: the socket-fed twin of SelmaLoadExpert (the merged expert of the same run has no file yet
when ComfyUI checks file pickers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from selma.experts.ref import ExpertRef


def test_schema_takes_a_model_and_an_expert_socket(node_package):
    node = node_package.nodes.experts.SelmaApplyExpert
    required = node.INPUT_TYPES()["required"]
    assert required["model"][0] == "MODEL" and required["expert"][0] == "SELMA_EXPERT"
    assert node.RETURN_TYPES == ("MODEL",)
    assert node_package.nodes.NODE_CLASS_MAPPINGS["SelmaApplyExpert"] is node


def test_strength_zero_returns_the_model_untouched(node_package):
    model = object()
    ref = ExpertRef(Path("merged.safetensors"), method="lora", skill="merged")
    assert node_package.nodes.experts.SelmaApplyExpert().apply(model, ref, 0.0) == (model,)


def test_refuses_an_expert_of_an_unknown_method(node_package):
    ref = ExpertRef(Path("dora.safetensors"), method="dora", skill="x")
    with pytest.raises(ValueError, match="'dora' expert; SELMA applies 'lora' and 'styleinject' experts"):
        node_package.nodes.experts.SelmaApplyExpert().apply(object(), ref, 1.0)
