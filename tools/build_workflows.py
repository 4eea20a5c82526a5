"""Write the shipped workflows (UI format + API-format twin + .jpg thumbnail) from one Python description each.

    python tools/build_workflows.py [--object-info PATH] [--out workflows]

Node schemas come from our node classes (this repo imported as ComfyUI imports it) and from a real ComfyUI's
/object_info dump, so widget order and socket types are the ones ComfyUI will use. Workflows whose nodes do not
exist yet (e.g. StyleInject nodes) are skipped with a message. tests/test_workflows.py validates the written files
themselves, not this script.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OBJECT_INFO = REPO.parent / "shared" / "comfyui" / "object_info.json"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
NOTE_TYPE = "MarkdownNote"  # a front-end-only node: saved in UI workflows, never sent to the server

# Smoke settings for a CPU run with random weights; every workflow's note lists them and where they live.
SMOKE = {
    "run_name": "selma_smoke",
    "prompt_count": 3,
    "sample_steps": 2,
    "resolution": 64,
    "train_steps": 3,
    "rank": 4,
    "batch_size": 1,
}
UNET_FILE = "random_sd15_unet.safetensors"
CLIP_FILE = "random_clip_l.safetensors"
VAE_FILE = "random_sd15_vae.safetensors"
HELD_OUT = "three red apples on a wooden table\na blue cup to the left of a green book"


# ----------------------------------------------------------------------------------------------- schemas
@dataclass
class InputSpec:
    name: str
    type: str  # "COMBO" for lists of options
    options: dict
    required: bool
    choices: list | None = None

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES and not self.options.get("forceInput")

    @property
    def has_control(self) -> bool:
        """ComfyUI's front end adds a 'control_after_generate' widget after such INT inputs."""
        flag = self.options.get("control_after_generate")
        return self.type == "INT" and (flag if flag is not None else self.name in ("seed", "noise_seed"))


@dataclass
class NodeSpec:
    inputs: list[InputSpec]
    outputs: list[tuple[str, str, bool]]  # (type, name, is_list)
    output_node: bool = False


def _input_spec(name: str, raw, required: bool) -> InputSpec:
    kind, options = raw[0], (raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {})
    if isinstance(kind, list):
        return InputSpec(name, "COMBO", options, required, list(kind))
    if kind == "COMBO":
        return InputSpec(name, "COMBO", options, required, list(options.get("options", [])))
    return InputSpec(name, kind, options, required)


def load_schemas(object_info_path: Path) -> dict[str, NodeSpec]:
    """Every node ComfyUI knows (object_info) plus ours, by class type."""
    specs = {}
    for class_type, info in json.loads(object_info_path.read_text()).items():
        order = info.get("input_order", {})
        inputs = [
            _input_spec(name, info["input"][section][name], section == "required")
            for section in ("required", "optional")
            for name in order.get(section, info["input"].get(section, {}))
        ]
        outputs = list(zip(info["output"], info["output_name"], info["output_is_list"], strict=True))
        specs[class_type] = NodeSpec(inputs, outputs, bool(info.get("output_node")))
    package = _import_repo()
    for class_type, cls in package.NODE_CLASS_MAPPINGS.items():
        types = cls.INPUT_TYPES()
        inputs = [
            _input_spec(name, raw, section == "required")
            for section in ("required", "optional")
            for name, raw in types.get(section, {}).items()
        ]
        names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
        lists = getattr(cls, "OUTPUT_IS_LIST", (False,) * len(cls.RETURN_TYPES))
        outputs = list(zip(cls.RETURN_TYPES, names, lists, strict=True))
        specs[class_type] = NodeSpec(inputs, outputs, bool(getattr(cls, "OUTPUT_NODE", False)))
    return specs


def _import_repo():
    name = "comfyui_selma"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# ----------------------------------------------------------------------------------------------- graphs
@dataclass(frozen=True)
class Out:
    node: Node
    slot: int


@dataclass(eq=False)
class Node:
    id: int
    type: str
    values: dict
    title: str | None = None
    column: int = 0
    size: tuple[int, int] | None = None

    def out(self, name_or_slot: str | int = 0) -> Out:
        if isinstance(name_or_slot, int):
            return Out(self, name_or_slot)
        names = [name for _, name, _ in self.graph.specs[self.type].outputs]
        return Out(self, names.index(name_or_slot))


@dataclass
class Graph:
    name: str
    title: str
    stages: list[str]
    note: str
    specs: dict[str, NodeSpec]
    nodes: list[Node] = field(default_factory=list)

    def add(self, class_type: str, title: str | None = None, **values) -> Node:
        if class_type not in self.specs and class_type != NOTE_TYPE:
            raise KeyError(f"unknown node type {class_type!r}")
        node = Node(len(self.nodes) + 1, class_type, values, title)
        node.graph = self
        self.nodes.append(node)
        return node

    # -- layout: a node's column is its longest path from a source; rows stack inside a column
    def _layout(self) -> dict[int, tuple[int, int]]:
        depth: dict[int, int] = {}

        def column(node: Node) -> int:
            if node.id not in depth:
                parents = [v.node for v in node.values.values() if isinstance(v, Out)]
                depth[node.id] = 1 + max((column(p) for p in parents), default=-1)
            return depth[node.id]

        heights: dict[int, int] = {}
        positions = {}
        for node in self.nodes:
            if node.type == NOTE_TYPE:
                positions[node.id] = (-480, 0)
                continue
            col = column(node)
            y = heights.get(col, 0)
            positions[node.id] = (col * 360, y)
            heights[col] = y + self._size(node)[1] + 60
        return positions

    def _size(self, node: Node) -> tuple[int, int]:
        if node.size:
            return node.size
        if node.type == NOTE_TYPE:
            return (440, 560)
        spec = self.specs[node.type]
        rows = max(len(spec.outputs), sum(1 for i in spec.inputs if not i.is_widget))
        widgets = sum(1 + i.has_control for i in spec.inputs if i.is_widget)
        multiline = sum(60 for i in spec.inputs if i.is_widget and i.options.get("multiline"))
        return (320, 40 + 22 * rows + 26 * widgets + multiline)

    def _order(self) -> list[Node]:
        """Nodes in an order where every node comes after the nodes it reads from (the UI's 'order')."""
        done, ordered = set(), []

        def visit(node: Node) -> None:
            if node.id in done:
                return
            for value in node.values.values():
                if isinstance(value, Out):
                    visit(value.node)
            done.add(node.id)
            ordered.append(node)

        for node in self.nodes:
            visit(node)
        return ordered

    # -- the two formats
    def ui(self) -> dict:
        positions, links, ui_nodes = self._layout(), [], {}
        order = {node.id: k for k, node in enumerate(self._order())}
        for node in self.nodes:
            if node.type == NOTE_TYPE:
                ui_nodes[node.id] = {
                    "id": node.id,
                    "type": NOTE_TYPE,
                    "pos": list(positions[node.id]),
                    "size": list(self._size(node)),
                    "flags": {},
                    "order": order[node.id],
                    "mode": 0,
                    "inputs": [],
                    "outputs": [],
                    "title": node.title or "Read me",
                    "properties": {},
                    "widgets_values": [node.values["text"]],
                    "color": "#432",
                    "bgcolor": "#653",
                }
                continue
            spec = self.specs[node.type]
            unknown = set(node.values) - {i.name for i in spec.inputs}
            if unknown:
                raise KeyError(f"{node.type} has no input(s) {sorted(unknown)}")
            inputs, widgets = [], []
            for spec_input in spec.inputs:
                value = node.values.get(spec_input.name)
                linked = isinstance(value, Out)
                if spec_input.is_widget:
                    widget_value = spec_input.options.get("default") if linked or value is None else value
                    if widget_value is None and spec_input.type == "COMBO":
                        widget_value = spec_input.choices[0]
                    if widget_value is None:
                        widget_value = {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[spec_input.type]
                    widgets.append(widget_value)
                    if spec_input.has_control:
                        widgets.append("fixed")
                    if not linked:
                        continue
                elif value is None and spec_input.required:
                    raise ValueError(f"{node.type}.{spec_input.name} (required socket) is not connected")
                entry = {"name": spec_input.name, "type": spec_input.type, "link": None}
                if spec_input.is_widget:
                    entry["widget"] = {"name": spec_input.name}
                if linked:
                    link_id = len(links) + 1
                    source = value.node
                    # The front end types a link by its source output (a '*' input takes any type).
                    link_type = self.specs[source.type].outputs[value.slot][0]
                    links.append([link_id, source.id, value.slot, node.id, len(inputs), link_type])
                    entry["link"] = link_id
                inputs.append(entry)
            outputs = []
            for slot, (kind, name, is_list) in enumerate(spec.outputs):
                output = {"name": name, "type": kind, "links": [], "slot_index": slot}
                if is_list:
                    output["shape"] = 6  # the front end draws list outputs with a grid-shaped dot
                outputs.append(output)
            ui_nodes[node.id] = {
                "id": node.id,
                "type": node.type,
                "pos": list(positions[node.id]),
                "size": list(self._size(node)),
                "flags": {},
                "order": order[node.id],
                "mode": 0,
                "inputs": inputs,
                "outputs": outputs,
                "properties": {"Node name for S&R": node.type},
                "widgets_values": widgets,
            }
            if node.title:
                ui_nodes[node.id]["title"] = node.title
        for link_id, source, slot, *_ in links:
            ui_nodes[source]["outputs"][slot]["links"].append(link_id)
        for node in ui_nodes.values():
            for output in node["outputs"]:
                output["links"] = output["links"] or None
        return {
            "id": f"comfyui-selma-{self.name}",
            "revision": 0,
            "last_node_id": max(ui_nodes),
            "last_link_id": len(links),
            "nodes": list(ui_nodes.values()),
            "links": links,
            "groups": [],
            "config": {},
            "extra": {"ds": {"scale": 0.6, "offset": [520, 40]}},
            "version": 0.4,
        }

    def api(self) -> dict:
        prompt = {}
        for node in self.nodes:
            if node.type == NOTE_TYPE:
                continue
            inputs = {}
            for spec_input in self.specs[node.type].inputs:
                value = node.values.get(spec_input.name)
                if isinstance(value, Out):
                    inputs[spec_input.name] = [str(value.node.id), value.slot]
                elif spec_input.is_widget:
                    inputs[spec_input.name] = self.ui_widget_value(node, spec_input)
            prompt[str(node.id)] = {
                "class_type": node.type,
                "inputs": inputs,
                "_meta": {"title": node.title or node.type},
            }
        return prompt

    def ui_widget_value(self, node: Node, spec_input: InputSpec):
        ui = next(n for n in self.ui()["nodes"] if n["id"] == node.id)
        widgets = [i for i in self.specs[node.type].inputs if i.is_widget]
        index = 0
        for candidate in widgets:
            if candidate.name == spec_input.name:
                return ui["widgets_values"][index]
            index += 1 + candidate.has_control
        raise KeyError(spec_input.name)


# ----------------------------------------------------------------------------------------------- pieces
def note_text(title: str, purpose: str, settings: list[str], extra: str = "") -> str:
    lines = "\n".join(f"- {s}" for s in settings)
    return f"""# {title}

{purpose}

## Models
The loaders default to random-weight SD1.5-size files for smoke runs (write them with
`python -m selma.testing.random_sd15 COMFYUI_DIR/models`):
`{UNET_FILE}` (Load Diffusion Model), `{CLIP_FILE}` (Load CLIP, type stable_diffusion),
`{VAE_FILE}` (Load VAE).

**Real checkpoint:** add a *Load Checkpoint* (CheckpointLoaderSimple) node and drag its MODEL, CLIP and
VAE outputs onto every socket the three loaders feed, then delete the loaders. Or pick your own files in
the three loaders.

## CPU smoke settings (and where to change them)
{lines}

SELMA's real recipe: ~1000+ prompts per skill, 512x512, rank 128, 5000 steps, batch 16 x 4.
{extra}"""


SMOKE_SETTINGS = [
    f"prompt count {SMOKE['prompt_count']}: *SELMA Generate Prompts* -> count",
    f"sampling steps {SMOKE['sample_steps']}: every *KSampler* -> steps",
    f"resolution {SMOKE['resolution']}x{SMOKE['resolution']}: *Empty Latent Image* -> width/height, "
    "and *SELMA Train Expert* -> resolution",
    f"training {SMOKE['train_steps']} steps, rank {SMOKE['rank']}, batch {SMOKE['batch_size']}: "
    "*SELMA Train Expert* -> steps / rank / batch_size",
    f"run folder: output/selma/{SMOKE['run_name']}/ (run_name widgets); experts are published as "
    f"models/loras/selma/{SMOKE['run_name']}-<skill>.safetensors",
]


def loaders(g: Graph):
    unet = g.add("UNETLoader", unet_name=UNET_FILE, weight_dtype="default")
    clip = g.add("CLIPLoader", clip_name=CLIP_FILE, type="stable_diffusion", device="default")
    vae = g.add("VAELoader", vae_name=VAE_FILE)
    latent = g.add(
        "EmptyLatentImage", width=SMOKE["resolution"], height=SMOKE["resolution"], batch_size=SMOKE["batch_size"]
    )
    negative = g.add("CLIPTextEncode", title="Negative prompt", text="", clip=clip.out(0))
    return unet.out(0), clip.out(0), vae.out(0), latent.out(0), negative.out(0)


def render(g: Graph, model: Out, vae: Out, positive: Out, negative: Out, latent: Out, seed: int, label: str) -> Out:
    """The native render: KSampler -> VAE Decode; runs once per prompt when `positive` comes from a list."""
    sampler = g.add(
        "KSampler",
        title=f"KSampler ({label})",
        model=model,
        seed=seed,
        steps=SMOKE["sample_steps"],
        cfg=7.0,
        sampler_name="euler",
        scheduler="normal",
        positive=positive,
        negative=negative,
        latent_image=latent,
        denoise=1.0,
    )
    return g.add("VAEDecode", title=f"VAE Decode ({label})", samples=sampler.out(0), vae=vae).out(0)


def skill_expert(
    g: Graph, skill: str, model: Out, clip: Out, vae: Out, latent: Out, negative: Out, seed: int, method: str = "lora"
):
    """skill -> prompts -> native render -> dataset writer -> expert. Returns the train node."""
    skill_node = g.add("SelmaSkill", title=f"Skill: {skill}", skill=skill)
    prompts = g.add(
        "SelmaGeneratePrompts",
        title=f"Prompts: {skill}",
        skill=skill_node.out(0),
        count=SMOKE["prompt_count"],
        threshold=0.8,
        seed=seed,
        run_name=SMOKE["run_name"],
        concurrency=8,
    )
    positive = g.add("CLIPTextEncode", title=f"Encode: {skill}", text=prompts.out("prompts"), clip=clip).out(0)
    images = render(g, model, vae, positive, negative, latent, seed, skill)
    dataset = g.add(
        "SelmaDatasetWriter",
        title=f"Dataset: {skill}",
        images=images,
        prompts=prompts.out("prompts"),
        skill=skill,
        run_name=SMOKE["run_name"],
        prompt_set=prompts.out("prompt_set"),
        image_format="png",
    )
    return train(g, skill, model, clip, vae, dataset.out(0), seed, method=method)


def train(g: Graph, skill: str, model: Out, clip: Out, vae: Out, dataset: Out, seed: int, method: str) -> Node:
    extra = {"num_styles": 4} if method == "styleinject" else {}
    return g.add(
        "SelmaTrainExpert",
        title=f"Train expert: {skill}",
        model=model,
        clip=clip,
        vae=vae,
        dataset=dataset,
        method=method,
        rank=SMOKE["rank"],
        alpha=float(SMOKE["rank"]),
        steps=SMOKE["train_steps"],
        learning_rate=1e-4,
        batch_size=SMOKE["batch_size"],
        grad_accumulation=1,
        resolution=SMOKE["resolution"],
        seed=seed,
        save_every=0,
        gradient_checkpointing=False,
        run_name=SMOKE["run_name"],
        preview_every=0,
        preview_prompt="",
        **extra,
    )


def merge(g: Graph, experts: list[Out]) -> Node:
    sockets = {f"expert_{k}": out for k, out in enumerate(experts, start=1)}
    return g.add(
        "SelmaMergeExperts",
        title="Merge experts (SELMA linear)",
        method="linear",
        weights="",
        rank=0,
        density=0.5,
        seed=0,
        save_name=f"selma/{SMOKE['run_name']}-merged.safetensors",
        expert_files="",
        **sockets,
    )


def held_out_prompts(g: Graph) -> Out:
    """Prompts not used in training, one per line, split into a STRING list (threshold 1.0 keeps every line)."""
    text = g.add("PrimitiveStringMultiline", title="Held-out prompts (one per line)", value=HELD_OUT)
    return g.add("SelmaFilterPrompts", title="Held-out prompt list", prompts=text.out(0), threshold=1.0, pool="").out(
        0
    )


def compare(g: Graph, columns: list[tuple[str, Out]], prompts: Out, title: str) -> None:
    """Base / experts / merged side by side: SELMA Compare Grid if installed, else one Save Image per column."""
    if "SelmaCompareGrid" in g.specs:
        spec = g.specs["SelmaCompareGrid"]
        image_inputs = [i.name for i in spec.inputs if i.type == "IMAGE"]
        values = dict(zip(image_inputs, (out for _, out in columns), strict=False))
        names = {i.name for i in spec.inputs}
        if "prompts" in names:
            values["prompts"] = prompts
        label_input = next((n for n in ("labels", "column_labels") if n in names), None)
        if label_input:
            values[label_input] = ", ".join(label for label, _ in columns)
        if "run_name" in names:
            values["run_name"] = SMOKE["run_name"]
        g.add("SelmaCompareGrid", title=title, **values)
        return
    for label, out in columns:
        g.add("SaveImage", title=f"Save: {label}", images=out, filename_prefix=f"selma/compare_{label}")


# ----------------------------------------------------------------------------------------------- workflows
def full_pipeline(specs) -> Graph:
    g = Graph(
        "selma_full_pipeline",
        "SELMA: full pipeline",
        ["skills", "prompts", "render", "datasets", "experts", "merge", "compare"],
        "",
        specs,
    )
    g.add(
        NOTE_TYPE,
        text=note_text(
            "SELMA full pipeline",
            "Two skills (counting, spatial): prompts written per skill -> rendered by this model (CLIP Text "
            "Encode -> KSampler -> VAE Decode, once per prompt) -> written as a dataset -> one LoRA expert per "
            "skill -> merged (SELMA's exact average) -> base, each expert and the merged expert rendered on "
            "held-out prompts, side by side.",
            SMOKE_SETTINGS,
            "\nThe held-out prompts are in the *Held-out prompts* node; keep them out of the training prompts.",
        ),
    )
    model, clip, vae, latent, negative = loaders(g)
    trained = [
        skill_expert(g, skill, model, clip, vae, latent, negative, seed)
        for seed, skill in enumerate(("counting", "spatial"))
    ]
    merged = merge(g, [t.out("expert") for t in trained])
    merged_model = g.add("SelmaApplyExpert", title="Apply merged expert", model=model, expert=merged.out(0))
    prompts = held_out_prompts(g)
    positive = g.add("CLIPTextEncode", title="Encode held-out", text=prompts, clip=clip).out(0)
    columns = [("base", render(g, model, vae, positive, negative, latent, 42, "base"))]
    for skill, node in zip(("counting", "spatial"), trained, strict=True):
        columns.append((skill, render(g, node.out("model"), vae, positive, negative, latent, 42, skill)))
    columns.append(("merged", render(g, merged_model.out(0), vae, positive, negative, latent, 42, "merged")))
    compare(g, columns, prompts, "Compare: base vs experts vs merged")
    return g


def train_expert(specs) -> Graph:
    g = Graph(
        "selma_train_expert",
        "SELMA: train one expert",
        ["skill", "prompts", "render", "dataset", "LoRA expert", "loss curve"],
        "",
        specs,
    )
    g.add(
        NOTE_TYPE,
        text=note_text(
            "SELMA: train one skill expert",
            "One skill (counting): prompts -> images rendered by this model -> dataset -> one LoRA expert, "
            "saved in models/loras/selma/ and applied to the MODEL output; the loss curve is previewed.",
            SMOKE_SETTINGS,
            "\nPick another skill in *Skill*, or 'custom' and fill in its description, examples and rules.",
        ),
    )
    model, clip, vae, latent, negative = loaders(g)
    trained = skill_expert(g, "counting", model, clip, vae, latent, negative, 0)
    g.add("PreviewImage", title="Loss curve", images=trained.out("loss_curve"))
    return g


def merge_compare(specs) -> Graph:
    g = Graph(
        "selma_merge_compare",
        "SELMA: merge and compare",
        ["load experts", "merge", "render held-out", "compare"],
        "",
        specs,
    )
    files = [f"selma/{SMOKE['run_name']}-{skill}.safetensors" for skill in ("counting", "spatial")]
    g.add(
        NOTE_TYPE,
        text=note_text(
            "SELMA: merge experts and compare",
            "Loads two experts from models/loras, merges them (SELMA's exact average) and renders base vs "
            "merged on held-out prompts, side by side.",
            [
                f"the experts: *SELMA Load Expert* -> expert_name ({files[0]}, {files[1]}: the files that "
                "selma_full_pipeline / selma_train_expert publish; any LoRA in models/loras works)",
                f"sampling steps {SMOKE['sample_steps']}: every *KSampler* -> steps",
                f"resolution {SMOKE['resolution']}x{SMOKE['resolution']}: *Empty Latent Image* -> width/height",
                "merge method, weights and rank: *SELMA Merge Experts*",
            ],
        ),
    )
    model, clip, vae, latent, negative = loaders(g)
    experts = [
        g.add("SelmaLoadExpert", title=f"Load expert {k}", model=model, expert_name=name, strength=1.0)
        for k, name in enumerate(files, start=1)
    ]
    merged = merge(g, [e.out("expert") for e in experts])
    merged_model = g.add("SelmaApplyExpert", title="Apply merged expert", model=model, expert=merged.out(0))
    prompts = held_out_prompts(g)
    positive = g.add("CLIPTextEncode", title="Encode held-out", text=prompts, clip=clip).out(0)
    columns = [
        ("base", render(g, model, vae, positive, negative, latent, 42, "base")),
        ("merged", render(g, merged_model.out(0), vae, positive, negative, latent, 42, "merged")),
    ]
    compare(g, columns, prompts, "Compare: base vs merged")
    return g


def styleinject_inspect(specs) -> Graph:
    g = Graph(
        "selma_styleinject_inspect",
        "SELMA: StyleInject + router inspection",
        ["skill", "prompts", "render", "dataset", "StyleInject expert", "router heatmap", "router embedding"],
        "",
        specs,
    )
    g.add(
        NOTE_TYPE,
        text=note_text(
            "SELMA: StyleInject expert and its router",
            "One skill (art): prompts -> images rendered by this model -> dataset -> a StyleInject expert (several "
            "down-projections mixed by a router, AdaIN re-scaling; saved in models/loras/selma/) -> the router "
            "probabilities recorded per layer and denoising step while sampling held-out prompts: a layers x "
            "steps heatmap, a 2-D embedding across prompts (the paper's Fig. 9) and the numbers as JSON. The "
            "heatmap is also drawn on the inspector node (hover for layer, step and probabilities).",
            SMOKE_SETTINGS + ["routed styles 4: *Train expert* -> num_styles"],
            "\nTo inspect an expert trained earlier, load it with *SELMA Load StyleInject* instead of training.",
        ),
    )
    model, clip, vae, latent, negative = loaders(g)
    trained = skill_expert(g, "art", model, clip, vae, latent, negative, 0, method="styleinject")
    g.add("PreviewImage", title="Loss curve", images=trained.out("loss_curve"))
    prompts = held_out_prompts(g)
    inspector = g.add(
        "SelmaRouterInspector",
        title="Router inspector",
        model=trained.out("model"),
        clip=clip,
        prompts=prompts,
        seed=42,
        steps=SMOKE["sample_steps"],
        cfg=7.0,
        sampler_name="euler",
        scheduler="normal",
        width=SMOKE["resolution"],
        height=SMOKE["resolution"],
        negative="",
    )
    g.add("PreviewImage", title="Router heatmap", images=inspector.out(0))
    g.add("PreviewImage", title="Router embedding", images=inspector.out(1))
    g.add("PreviewAny", title="Router numbers (JSON)", source=inspector.out(2))
    return g


STYLEINJECT_NODES = ("SelmaLoadStyleInject", "SelmaRouterInspector")
WORKFLOWS = {
    "selma_full_pipeline": (full_pipeline, ("SelmaApplyExpert",)),
    "selma_train_expert": (train_expert, ()),
    "selma_merge_compare": (merge_compare, ("SelmaApplyExpert",)),
    "selma_styleinject_inspect": (styleinject_inspect, STYLEINJECT_NODES),
}


# ----------------------------------------------------------------------------------------------- thumbnails
def thumbnail(graph: Graph, path: Path) -> None:
    """A small diagram-like card: the title and the stages as boxes joined by arrows."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 512, 288
    image = Image.new("RGB", (width, height), (28, 31, 38))
    draw = ImageDraw.Draw(image)
    try:
        title_font = ImageFont.truetype("DejaVuSans-Bold.ttf", 26)
        box_font = ImageFont.truetype("DejaVuSans.ttf", 13)
    except OSError:
        title_font = box_font = ImageFont.load_default()
    draw.rectangle([0, 0, width, 6], fill=(233, 140, 52))
    draw.text((24, 22), graph.title, font=title_font, fill=(240, 240, 240))
    draw.text((24, 58), "comfyui-selma workflow", font=box_font, fill=(150, 160, 175))
    stages = graph.stages
    per_row = 4
    box_w, box_h, gap = 100, 44, 20
    for k, stage in enumerate(stages):
        row, col = divmod(k, per_row)
        x = 24 + col * (box_w + gap)
        y = 100 + row * (box_h + 40)
        draw.rounded_rectangle([x, y, x + box_w, y + box_h], radius=8, fill=(52, 60, 78), outline=(110, 160, 230))
        left, top, right, bottom = draw.textbbox((0, 0), stage, font=box_font)
        draw.text(
            (x + (box_w - (right - left)) / 2, y + (box_h - (bottom - top)) / 2 - top),
            stage,
            font=box_font,
            fill=(235, 235, 235),
        )
        if k + 1 < len(stages):
            if col + 1 < per_row:
                ax, ay = x + box_w + 3, y + box_h // 2
                draw.line([ax, ay, ax + gap - 6, ay], fill=(233, 140, 52), width=2)
                draw.polygon([(ax + gap - 6, ay - 4), (ax + gap - 2, ay), (ax + gap - 6, ay + 4)], fill=(233, 140, 52))
            else:  # wrap: an arrow down to the next row's first box
                ax, ay = x + box_w // 2, y + box_h + 3
                draw.line(
                    [ax, ay, ax, ay + 14, 24 + box_w // 2, ay + 14, 24 + box_w // 2, ay + 34],
                    fill=(233, 140, 52),
                    width=2,
                )
    image.save(path, "JPEG", quality=85, optimize=True)


# ----------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--object-info", type=Path, default=OBJECT_INFO)
    parser.add_argument("--out", type=Path, default=REPO / "workflows")
    args = parser.parse_args(argv)
    specs = load_schemas(args.object_info)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (build, needs) in WORKFLOWS.items():
        missing = [n for n in needs if n not in specs]
        if missing:
            print(f"skip {name}: nodes {missing} do not exist yet")
            continue
        graph = build(specs)
        (args.out / f"{name}.json").write_text(json.dumps(graph.ui(), indent=2) + "\n")
        (args.out / f"{name}_api.json").write_text(json.dumps(graph.api(), indent=2) + "\n")
        thumbnail(graph, args.out / f"{name}.jpg")
        print(f"wrote {name}: {len(graph.nodes)} nodes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
