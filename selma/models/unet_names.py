"""UNet module names in diffusers' and in the original LDM (ComfyUI, A1111, sgm) spelling, and the map between them.

Both spellings index the same SD-family UNet (SD1.x, SD2.x, SDXL and tiny configs of the same classes):

- diffusers groups modules per resolution level: ``down_blocks.<level>.{resnets,attentions,downsamplers}.<j>``,
  ``mid_block.{resnets,attentions}.<j>``, ``up_blocks.<i>.{resnets,attentions,upsamplers}.<j>`` (``up_blocks.0``
  is the deepest level).
- LDM numbers sequential blocks: ``input_blocks.<n>.<m>``, ``middle_block.<m>``, ``output_blocks.<n>.<m>``, where
  each block ``n`` holds a resnet (``m = 0``), then the transformer if the level has attention (``m = 1``), then an
  up-sampler after the last resnet of a level; ``input_blocks.0`` is ``conv_in`` and every level but the deepest
  ends with a down-sampling block of its own.

Inside a transformer (``proj_in``, ``transformer_blocks.<k>.attn1.to_q``, ``ff.net.0.proj``, ...) both spellings
agree; resnet and sampler internals are renamed (``conv1`` <-> ``in_layers.2``, ``conv`` <-> ``op``). The functions
work on module names and on parameter names (``...to_q.weight``) alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# diffusers name -> LDM name of the modules that live outside the blocks.
_TOP_LEVEL = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_TOP_LEVEL_LDM = {ldm: diffusers for diffusers, ldm in _TOP_LEVEL.items()}

# diffusers ResnetBlock2D child -> LDM ResBlock child (LDM wraps them in Sequentials with activations between).
_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_RESNET_LDM = {ldm: diffusers for diffusers, ldm in _RESNET.items()}

DIFFUSERS_TOP_NAMES = frozenset({"down_blocks", "mid_block", "up_blocks"} | {n.split(".")[0] for n in _TOP_LEVEL})
LDM_TOP_NAMES = frozenset({"input_blocks", "middle_block", "output_blocks", "time_embed", "label_emb", "out"})

_DOWN_TYPES = {"CrossAttnDownBlock2D": True, "DownBlock2D": False}
_UP_TYPES = {"CrossAttnUpBlock2D": True, "UpBlock2D": False}


@dataclass(frozen=True)
class UnetLayout:
    """The block structure both spellings index into: per layer, how many transformer blocks it has (0 = none).

    ``down[level][j]`` for the ``j``-th resnet of a down level, ``up[i][j]`` for up block ``i`` (diffusers order,
    deepest first; one layer more than the matching down level), ``mid`` for the middle block (``None``: no middle
    block). Build it with `UnetLayout.from_config`.
    """

    down: tuple[tuple[int, ...], ...]
    up: tuple[tuple[int, ...], ...]
    mid: int | None
    has_add_embedding: bool = False

    def __post_init__(self) -> None:
        if not self.down or len(self.up) != len(self.down):
            raise ValueError(
                f"a UNet layout needs as many up blocks as down levels, got {len(self.down)} / {len(self.up)}"
            )
        for i, layers in enumerate(self.up):
            if len(layers) != len(self.down[-1 - i]) + 1:
                raise ValueError(
                    f"up block {i} must have one layer more than down level {len(self.down) - 1 - i}, "
                    f"got {len(layers)} and {len(self.down[-1 - i])}"
                )

    @property
    def levels(self) -> int:
        return len(self.down)

    @classmethod
    def from_config(cls, config: Any) -> UnetLayout:
        """From a diffusers ``UNet2DConditionModel`` config (dict or FrozenDict), a UNet itself (its ``.config``),
        or an LDM/ComfyUI ``unet_config`` (``num_res_blocks``, ``transformer_depth``, ``transformer_depth_output``,
        ``transformer_depth_middle``; ComfyUI keeps it in ``model.model_config.unet_config``)."""
        if isinstance(config, UnetLayout):
            return config
        if not isinstance(config, Mapping) and isinstance(getattr(config, "config", None), Mapping):
            config = config.config
        if not isinstance(config, Mapping):
            raise TypeError(f"expected a UNet config mapping or a UNet, got {type(config).__name__}")
        if "down_block_types" in config:
            return _layout_from_diffusers(config)
        if "num_res_blocks" in config:
            return _layout_from_ldm(config)
        raise ValueError(
            "this config is neither a diffusers UNet2DConditionModel config (no 'down_block_types') nor an "
            "LDM/ComfyUI unet_config (no 'num_res_blocks'); pass unet.config or ComfyUI's "
            "model.model_config.unet_config"
        )


def _per_layer(depth: Any, count: int) -> tuple[int, ...]:
    if isinstance(depth, int):
        return (depth,) * count
    depth = tuple(int(d) for d in depth)
    if len(depth) != count:
        raise ValueError(f"transformer depth {depth} lists {len(depth)} layers for a block of {count}")
    return depth


def _layout_from_diffusers(config: Mapping) -> UnetLayout:
    down_types, up_types = list(config["down_block_types"]), list(config["up_block_types"])
    for kind, types, known in (("down_block_types", down_types, _DOWN_TYPES), ("up_block_types", up_types, _UP_TYPES)):
        for block_type in types:
            if block_type not in known:
                raise ValueError(
                    f"{kind} contains {block_type!r}: only SD-family UNets ({', '.join(known)}) have LDM names"
                )
    levels = len(down_types)
    layers = config.get("layers_per_block", 2)
    layers = [layers] * levels if isinstance(layers, int) else list(layers)
    depth = config.get("transformer_layers_per_block", 1)
    depth = [depth] * levels if isinstance(depth, int) else list(depth)
    reverse_depth = config.get("reverse_transformer_layers_per_block") or list(reversed(depth))
    down = tuple(
        _per_layer(depth[i], layers[i]) if _DOWN_TYPES[down_types[i]] else (0,) * layers[i] for i in range(levels)
    )
    up = tuple(
        _per_layer(reverse_depth[i], layers[-1 - i] + 1) if _UP_TYPES[up_types[i]] else (0,) * (layers[-1 - i] + 1)
        for i in range(levels)
    )
    mid_type = config.get("mid_block_type", "UNetMidBlock2DCrossAttn")
    if mid_type not in ("UNetMidBlock2DCrossAttn", None):
        raise ValueError(f"mid_block_type {mid_type!r} has no LDM counterpart; only UNetMidBlock2DCrossAttn or None")
    mid_depth = depth[-1] if isinstance(depth[-1], int) else depth[-1][0]
    mid = None if mid_type is None else mid_depth
    return UnetLayout(down, up, mid, has_add_embedding=config.get("addition_embed_type") == "text_time")


def _layout_from_ldm(config: Mapping) -> UnetLayout:
    levels = len(config["channel_mult"])
    layers = config["num_res_blocks"]
    layers = [layers] * levels if isinstance(layers, int) else list(layers)
    depth_in = list(config.get("transformer_depth") or [0] * sum(layers))
    depth_out = list(config.get("transformer_depth_output") or [0] * (sum(layers) + levels))
    if len(depth_in) != sum(layers) or len(depth_out) != sum(layers) + levels:
        raise ValueError(
            f"transformer_depth lists {len(depth_in)} input layers and transformer_depth_output {len(depth_out)} "
            f"output layers; num_res_blocks {layers} needs {sum(layers)} and {sum(layers) + levels}"
        )
    down, start = [], 0
    for count in layers:
        down.append(tuple(max(0, int(d)) for d in depth_in[start : start + count]))
        start += count
    # transformer_depth_output is ordered like LDM's output_blocks read backwards (shallowest level first).
    by_output_block = [max(0, int(d)) for d in reversed(depth_out)]
    up, start = [], 0
    for count in reversed(layers):
        up.append(tuple(by_output_block[start : start + count + 1]))
        start += count + 1
    mid_depth = config.get("transformer_depth_middle")
    mid = int(mid_depth) if mid_depth is not None and int(mid_depth) >= 0 else 0
    has_add = config.get("adm_in_channels") is not None and config.get("num_classes") == "sequential"
    return UnetLayout(tuple(down), tuple(up), mid, has_add_embedding=has_add)


def _unknown(name: str, why: str) -> ValueError:
    return ValueError(f"module name {name!r} does not exist in this UNet ({why})")


def _input_block_start(layout: UnetLayout, level: int) -> int:
    # input_blocks.0 is conv_in; each level has one block per resnet plus a down-sampler unless it is the deepest.
    return 1 + sum(len(layout.down[i]) + (1 if i < layout.levels - 1 else 0) for i in range(level))


def _output_block_start(layout: UnetLayout, block: int) -> int:
    return sum(len(layout.up[i]) for i in range(block))


def _int(part: str, name: str) -> int:
    if not part.isdigit():
        raise _unknown(name, f"{part!r} is not a block index")
    return int(part)


def _check_transformer(layout_depth: int, rest: list[str], name: str, where: str) -> None:
    if layout_depth == 0:
        raise _unknown(name, f"{where} has no attention")
    if len(rest) >= 2 and rest[0] == "transformer_blocks" and _int(rest[1], name) >= layout_depth:
        raise _unknown(name, f"{where} has {layout_depth} transformer block(s)")


def _resnet_to_ldm(rest: list[str], name: str) -> str:
    if not rest or rest[0] not in _RESNET:
        raise _unknown(name, f"a resnet has no child {'.'.join(rest)!r}")
    return ".".join([_RESNET[rest[0]], *rest[1:]])


def _resnet_from_ldm(rest: list[str], name: str) -> str:
    for size in (2, 1):  # in_layers.2 / skip_connection
        inner = ".".join(rest[:size])
        if inner in _RESNET_LDM:
            return ".".join([_RESNET_LDM[inner], *rest[size:]])
    raise _unknown(name, f"an LDM ResBlock has no child {'.'.join(rest)!r}")


def _join(*parts: Any) -> str:
    return ".".join(str(p) for p in parts if p != "")


def diffusers_to_ldm(name: str, config: Any) -> str:
    """The LDM/ComfyUI name of a diffusers UNet module (or parameter) name, for the UNet `config` describes
    (anything `UnetLayout.from_config` takes). Raises ValueError if the module does not exist in that UNet."""
    layout = UnetLayout.from_config(config)
    for top, ldm in _TOP_LEVEL.items():
        if name == top or name.startswith(top + "."):
            if top.startswith("add_embedding") and not layout.has_add_embedding:
                raise _unknown(name, "this UNet has no added (text_time) embedding")
            return ldm + name[len(top) :]
    parts = name.split(".")
    if parts[0] in ("down_blocks", "up_blocks") and len(parts) >= 4:
        block, kind, j, rest = _int(parts[1], name), parts[2], _int(parts[3], name), parts[4:]
        if block >= layout.levels:
            raise _unknown(name, f"the UNet has {layout.levels} {parts[0]}")
        down = parts[0] == "down_blocks"
        layers = layout.down[block] if down else layout.up[block]
        where = f"{parts[0]}.{block}"
        if kind in ("resnets", "attentions") and j >= len(layers):
            raise _unknown(name, f"{where} has {len(layers)} layers")
        start = _input_block_start(layout, block) if down else _output_block_start(layout, block)
        prefix = "input_blocks" if down else "output_blocks"
        if kind == "resnets":
            return _join(prefix, start + j, 0, _resnet_to_ldm(rest, name))
        if kind == "attentions":
            _check_transformer(layers[j], rest, name, where)
            return _join(prefix, start + j, 1, ".".join(rest))
        sampler = "downsamplers" if down else "upsamplers"
        if kind == sampler and j == 0 and rest[:1] == ["conv"]:
            if block == layout.levels - 1:
                raise _unknown(name, f"the last of the {parts[0]} has no {sampler}")
            if down:
                return _join(prefix, start + len(layers), 0, "op", ".".join(rest[1:]))
            # LDM puts the up-sampler after the resnet and (if any) the transformer of the level's last layer.
            return _join(prefix, start + len(layers) - 1, 2 if layers[-1] else 1, ".".join(rest))
        raise _unknown(name, f"{where} has no {'.'.join(parts[2:4])!r}")
    if parts[0] == "mid_block" and len(parts) >= 3:
        if layout.mid is None:
            raise _unknown(name, "this UNet has no middle block")
        kind, j, rest = parts[1], _int(parts[2], name), parts[3:]
        if kind == "resnets" and j in (0, 1):
            return _join("middle_block", 2 * j, _resnet_to_ldm(rest, name))
        if kind == "attentions" and j == 0:
            _check_transformer(layout.mid, rest, name, "mid_block")
            return _join("middle_block", 1, ".".join(rest))
        raise _unknown(name, f"mid_block has no {'.'.join(parts[1:3])!r}")
    raise _unknown(name, "not a diffusers UNet2DConditionModel module name")


def ldm_to_diffusers(name: str, config: Any) -> str:
    """The diffusers name of an LDM/ComfyUI UNet module (or parameter) name; the inverse of `diffusers_to_ldm`."""
    layout = UnetLayout.from_config(config)
    parts = name.split(".")
    for size in (3, 2):
        top = ".".join(parts[:size])
        if top in _TOP_LEVEL_LDM:
            result = _join(_TOP_LEVEL_LDM[top], ".".join(parts[size:]))
            diffusers_to_ldm(result, layout)  # raises if this UNet lacks it (e.g. label_emb on SD1.x)
            return result
    if parts[0] in ("input_blocks", "output_blocks") and len(parts) >= 3:
        n, m, rest = _int(parts[1], name), _int(parts[2], name), parts[3:]
        down = parts[0] == "input_blocks"
        for block in range(layout.levels):
            start = _input_block_start(layout, block) if down else _output_block_start(layout, block)
            layers = layout.down[block] if down else layout.up[block]
            size = len(layers) + (1 if down and block < layout.levels - 1 else 0)
            if not start <= n < start + size:
                continue
            j, side = n - start, ("down_blocks" if down else "up_blocks")
            if down and j == len(layers):  # the level's down-sampling block
                if m != 0 or rest[:1] != ["op"]:
                    raise _unknown(name, f"input block {n} is a down-sampler (only '{n}.0.op')")
                return _join(side, block, "downsamplers.0.conv", ".".join(rest[1:]))
            if m == 0:
                return _join(side, block, "resnets", j, _resnet_from_ldm(rest, name))
            if m == 1 and layers[j]:
                _check_transformer(layers[j], rest, name, f"{parts[0]}.{n}")
                return _join(side, block, "attentions", j, ".".join(rest))
            is_upsampler = not down and j == len(layers) - 1 and block < layout.levels - 1
            if is_upsampler and m == (2 if layers[j] else 1) and rest[:1] == ["conv"]:
                return _join(side, block, "upsamplers.0", ".".join(rest))
            raise _unknown(name, f"{parts[0]}.{n} has no child {m}")
        raise _unknown(name, f"the UNet has no {parts[0]}.{n}")
    if parts[0] == "middle_block" and len(parts) >= 2 and layout.mid is not None:
        m, rest = _int(parts[1], name), parts[2:]
        if m in (0, 2):
            return _join("mid_block.resnets", m // 2, _resnet_from_ldm(rest, name))
        if m == 1:
            _check_transformer(layout.mid, rest, name, "middle_block")
            return _join("mid_block.attentions.0", ".".join(rest))
        raise _unknown(name, f"middle_block has no child {m}")
    raise _unknown(name, "not an LDM UNet module name")


def is_ldm_name(name: str) -> bool:
    """Whether a (dotted) UNet module name is in LDM spelling rather than diffusers spelling."""
    return name.split(".", 1)[0] in LDM_TOP_NAMES


# Multi-word identifiers of both spellings: kohya keys replace every '.' by '_', so these must be re-joined.
_COMPOUNDS = sorted(
    {
        *(part for name in [*_TOP_LEVEL, *_TOP_LEVEL_LDM, *_RESNET, *_RESNET_LDM] for part in name.split(".")),
        *DIFFUSERS_TOP_NAMES,
        *LDM_TOP_NAMES,
        "transformer_blocks",
        "class_embedding",  # kohya names of class_embedding.linear_{1,2} (read as add_embedding, as ComfyUI does)
        "proj_in",
        "proj_out",
        "to_q",
        "to_k",
        "to_v",
        "to_out",
    },
    key=lambda word: -word.count("_"),
)


def dotted_name(underscored: str) -> str:
    """Undo kohya's flattening: ``down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0`` ->
    ``down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0`` (works for LDM names too)."""
    words, out, i = underscored.split("_"), [], 0
    while i < len(words):
        for compound in _COMPOUNDS:
            size = compound.count("_") + 1
            if size > 1 and "_".join(words[i : i + size]) == compound:
                out.append(compound)
                i += size
                break
        else:
            out.append(words[i])
            i += 1
    return ".".join(out)


# The LDM layouts of the families whose foreign LoRA files may arrive without a config (first match wins).
FAMILY_LDM_CONFIGS: dict[str, dict] = {
    "SD1.x/SD2.x": {
        "num_res_blocks": [2, 2, 2, 2],
        "channel_mult": [1, 2, 4, 4],
        "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
        "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
        "transformer_depth_middle": 1,
    },
    "SDXL": {
        "num_res_blocks": [2, 2, 2],
        "channel_mult": [1, 2, 4],
        "transformer_depth": [0, 0, 2, 2, 10, 10],
        "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
        "transformer_depth_middle": 10,
        "adm_in_channels": 2816,
        "num_classes": "sequential",
    },
}


def guess_ldm_family(names: Iterable[str]) -> tuple[str, UnetLayout]:
    """The first known family in which every LDM name exists (for LoRA files that do not say their model)."""
    names = list(names)
    for family, config in FAMILY_LDM_CONFIGS.items():
        layout = UnetLayout.from_config(config)
        try:
            for name in names:
                ldm_to_diffusers(name, layout)
        except ValueError:
            continue
        return family, layout
    raise ValueError(
        f"these LDM module names fit neither of {', '.join(FAMILY_LDM_CONFIGS)} (e.g. {names[0]!r}); "
        "pass the UNet config of the model the file was made for (unet_config=unet.config)"
    )
