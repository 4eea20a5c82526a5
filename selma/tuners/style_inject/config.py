"""`StyleInjectConfig`: the PEFT config of a StyleInject adapter (DESIGN §3.5), and its `PeftType` member.

PEFT keys every method by a member of its `PeftType` enum and `register_peft_method` refuses names the enum
lacks. PEFT offers no way to add one without editing its files, so `STYLEINJECT` is added to the enum here, at
import, through the same internal tables `enum` fills for a member declared in the class body; PEFT's own
registration then runs unchanged (see `__init__.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from peft.config import PeftConfig
from peft.utils import PeftType

METHOD_NAME = "styleinject"  # PEFT method name; its prefix (and our parameter names' prefix) is "styleinject_"


def style_inject_peft_type() -> PeftType:
    """`PeftType.STYLEINJECT`, added to PEFT's enum on first call (idempotent, also across re-imports)."""
    name = METHOD_NAME.upper()
    if name in PeftType.__members__:
        return PeftType[name]
    member = str.__new__(PeftType, name)
    member._name_ = name
    member._value_ = name
    member.__objclass__ = PeftType
    member._sort_order_ = len(PeftType._member_names_)
    PeftType._member_names_.append(name)
    PeftType._member_map_[name] = member
    PeftType._value2member_map_[name] = member
    # type.__setattr__: the enum metaclass refuses attribute assignment of member names.
    type.__setattr__(PeftType, name, member)
    return member


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class StyleInjectConfig(PeftConfig):
    """A StyleInject adapter: `num_styles` down-projections sharing one up-projection, mixed per sample by a
    router (DMA), and an AdaIN-style re-scaling of each output channel's spread by a hypernetwork (STA).

    Usable wherever PEFT configs are: `unet.add_adapter(config)` (diffusers), `peft.inject_adapter_in_model`,
    `peft.get_peft_model`. Zero-initialised (`init_weights=True`): a fresh adapter leaves outputs unchanged.
    """

    r: int = field(default=32, metadata={"help": "Rank of every down-projection A_i and of the shared up-projection."})
    num_styles: int = field(
        default=4,
        metadata={"help": "n: how many down-projections A_i the router mixes (the paper's n; 1 = STA alone)."},
    )
    alpha: float = field(default=32.0, metadata={"help": "The update is scaled by s = alpha / r (as LoRA's alpha)."})
    target_modules: list[str] | str | None = field(
        default=None,
        metadata={
            "help": "Names (suffix match, e.g. ['to_q', 'to_v']) or a regex (full match) of the nn.Linear / nn.Conv2d "
            "modules to adapt. Required: UNets have no default."
        },
    )
    exclude_modules: list[str] | str | None = field(
        default=None, metadata={"help": "Names or a regex of modules not to adapt, even if target_modules match them."}
    )
    use_dma: bool = field(
        default=True,
        metadata={
            "help": "Dynamic multi-style adaptation: the router. False is the paper's 'STA alone' ablation: needs "
            "num_styles=1 and drops the router (with one style it is the constant p = 1)."
        },
    )
    use_sta: bool = field(
        default=True,
        metadata={
            "help": "Style transfer via AdaIN: the hypernetwork gamma = Linear(p) and y = h + gamma (h - mu) / sigma. "
            "False is the paper's 'DMA alone' ablation (no hypernetwork)."
        },
    )
    sta_eps: float = field(
        default=1e-5,
        metadata={"help": "Added to the per-channel variance before the square root: sigma = sqrt(var + eps) > 0."},
    )
    num_experts: int = field(
        default=1,
        metadata={
            "help": "K: independent sub-experts per layer, the layout an exact merge of K StyleInject experts by "
            "stacking needs. Each has its own num_styles down-projections, up-projection, router (its own softmax) "
            "and hypernetwork, all computed from the same base output W0 x; the layer returns "
            "W0 x + sum_k w_k (h_k + AdaIN_k(h_k) - W0 x) with h_k = W0 x + s B_k(sum_i p_ki A_ki x). "
            "1 = a plain StyleInject adapter."
        },
    )
    expert_weights: list[float] | None = field(
        default=None,
        metadata={"help": "w_k: one weight per sub-expert (num_experts values); None = all 1."},
    )
    init_weights: bool = field(
        default=True,
        metadata={
            "help": "True: B and the hypernetwork start at zero, so the adapter starts as the identity. False: they "
            "start random too (for tests and debugging only)."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = style_inject_peft_type()
        if not _is_int(self.r) or self.r < 1:
            raise ValueError(f"r must be a positive integer (the rank), got {self.r!r}")
        if not _is_int(self.num_styles) or self.num_styles < 1:
            raise ValueError(f"num_styles must be a positive integer (1 = a single style), got {self.num_styles!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float) or not math.isfinite(self.alpha):
            raise ValueError(f"alpha must be a finite number (the update is scaled by alpha / r), got {self.alpha!r}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be > 0 (the update is scaled by alpha / r), got {self.alpha!r}")
        if not self.target_modules:
            raise ValueError(
                f"target_modules must name the modules to adapt, e.g. ['to_q', 'to_v'] (the paper's choice), got "
                f"{self.target_modules!r}"
            )
        if not self.use_dma and self.num_styles != 1:
            raise ValueError(
                f"use_dma=False (the paper's 'STA alone') keeps a single down-projection, so num_styles must be 1, "
                f"got num_styles={self.num_styles!r}; set num_styles=1 or use_dma=True"
            )
        if not self.use_dma and not self.use_sta:
            raise ValueError(
                "use_dma=False and use_sta=False leave a plain LoRA; set one of them to True, or train a LoRA instead"
            )
        if not _is_int(self.num_experts) or self.num_experts < 1:
            raise ValueError(
                f"num_experts must be a positive integer (1 = a plain adapter; K = K stacked experts), got "
                f"{self.num_experts!r}"
            )
        if self.expert_weights is not None:
            weights = list(self.expert_weights) if isinstance(self.expert_weights, list | tuple) else None
            if (
                weights is None
                or len(weights) != self.num_experts
                or not all(
                    isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) for w in weights
                )
            ):
                raise ValueError(
                    f"expert_weights must be None or {self.num_experts} finite numbers (one per sub-expert, "
                    f"num_experts={self.num_experts}), got {self.expert_weights!r}"
                )
            self.expert_weights = [float(w) for w in weights]
        if isinstance(self.sta_eps, bool) or not isinstance(self.sta_eps, int | float) or not self.sta_eps > 0:
            raise ValueError(f"sta_eps must be a number > 0 (it keeps sigma away from zero), got {self.sta_eps!r}")
        # PEFT's convention: lists of names become sets (a str stays a regex).
        if isinstance(self.target_modules, list | tuple):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, list | tuple):
            self.exclude_modules = set(self.exclude_modules)

    @property
    def scaling(self) -> float:
        """s = alpha / r, the factor of the DMA update."""
        return self.alpha / self.r

    @property
    def is_stacked(self) -> bool:
        """Whether layers take the sub-expert path: several sub-experts, or one with a weight other than 1."""
        return self.num_experts > 1 or (self.expert_weights is not None and self.expert_weights != [1.0])

    def to_json_dict(self) -> dict:
        """The config as JSON-ready data (sets as sorted lists), e.g. for an expert file's header;
        `StyleInjectConfig(**data)` restores it."""
        data = self.to_dict()
        for key, value in data.items():
            if isinstance(value, set):
                data[key] = sorted(value)
        data["peft_type"] = str(self.peft_type.value)
        return data
