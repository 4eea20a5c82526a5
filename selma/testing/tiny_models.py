"""Tiny Stable Diffusion / SDXL pipelines and a tiny causal LM, built offline from configs with random weights.

Every model is a real diffusers / transformers class at a tiny config (the way diffusers' own tests build
their dummy components), so code under test runs the same paths it runs on real checkpoints. Nothing here
touches a model hub: the CLIP tokenizer is written from a hand-made byte-level BPE vocabulary.

Weights depend only on ``seed``: the same seed gives bit-identical weights, each component drawing from
its own seeded stream, and the caller's global RNG state is left as it was.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

__all__ = [
    "build_sd15_unet",
    "build_clip_tokenizer",
    "build_tiny_causal_lm",
    "build_tiny_clip_tokenizer",
    "build_tiny_sd",
    "build_tiny_sdxl",
    "sd15_unet_config",
]

# Whole-word tokens: the words prompts for the shipped skills use most (counting, colours, objects,
# spatial relations, scenes, art styles). Anything else still tokenizes, character by character.
_WORDS = """
a an the one two three four five six seven eight nine ten eleven twelve zero single pair couple several
many few some no each every both all only first second third half dozen number
red orange yellow green blue purple violet pink brown black white gray grey silver gold golden beige
teal cyan magenta navy maroon crimson turquoise colorful colourful bright dark light pale striped spotted
person people man woman men women boy girl child children baby player chef doctor teacher farmer
cat cats dog dogs horse horses sheep cow cows bird birds elephant bear zebra giraffe mouse fish duck
rabbit lion tiger monkey fox owl frog snake butterfly
car cars bicycle bike motorcycle airplane plane bus train truck boat ship rocket
apple apples banana bananas orange sandwich pizza cake donut carrot broccoli cup cups bowl plate bottle
glass fork knife spoon chair chairs table couch sofa bed bench desk lamp clock vase book books phone
laptop keyboard television tv umbrella backpack bag hat shirt dress shoe shoes tie kite ball balloon
flower flowers tree trees plant house building window door wall fence road street sign bridge tower
castle mountain river lake sea ocean beach sky cloud clouds sun moon star stars field forest garden
park city room kitchen snow rain grass water fire rock stone box toy robot teddy guitar piano
left right above below on under over behind in inside outside front back of next to near beside between
top bottom middle center corner around across along against through onto into up down far close side
and or with without at by from for is are was were it its this that there here while holding sitting
standing running walking flying eating playing wearing looking lying riding jumping reading
big small large tiny tall short long round square wooden metal plastic old new young happy sad
photo photograph picture image painting drawing sketch illustration portrait landscape render art style
digital oil watercolor detailed realistic cinematic lighting highly high quality sharp focus background
text says word words letter letters written reads saying label logo poster
"""


@contextlib.contextmanager
def _seeded(seed: int, stream: int) -> Iterator[None]:
    """Seed torch's CPU RNG for one component (its own stream) and restore the caller's state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed * 16 + stream)
        yield


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable character table (the alphabet of a byte-level BPE)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Standard BPE: repeatedly merge the lowest-ranked adjacent pair (as CLIP and `tokenizers` do)."""
    while len(symbols) > 1:
        pairs = [(ranks.get(p, len(ranks)), i, p) for i, p in enumerate(zip(symbols, symbols[1:], strict=False))]
        rank, _, best = min(pairs)
        if rank == len(ranks):
            break
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def _learn_merges(words: list[list[str]]) -> list[tuple[str, str]]:
    """Merges that turn each word (a list of base symbols) into one token.

    A merge appended last only fires once no earlier merge applies, so words already made whole stay
    whole: the loop needs at most ``len(word) - 1`` merges per word and is deterministic.
    """
    ranks: dict[tuple[str, str], int] = {}
    for symbols in words:
        while len(segments := _bpe(symbols, ranks)) > 1:
            ranks[(segments[0], segments[1])] = len(ranks)
    return list(ranks)


def _word_list() -> list[str]:
    return list(dict.fromkeys(_WORDS.split()))


def build_tiny_clip_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer over a small hand-written byte-level BPE vocabulary (about 1,500 tokens).

    Like the real one: 256 byte symbols, their ``</w>`` end-of-word variants, merges, then
    ``<|startoftext|>`` and ``<|endoftext|>``; lower-cased; ``model_max_length`` 77. Any text (unknown
    words, digits, punctuation, non-ASCII) tokenizes, falling back to byte symbols.
    """
    return build_clip_tokenizer(_word_list(), max_length=77)


def build_clip_tokenizer(words: list[str], *, max_length: int) -> CLIPTokenizer:
    """A byte-level BPE CLIP tokenizer whose merges make each of `words` (lower-case) one token."""
    alphabet = list(_bytes_to_unicode().values())
    merges = _learn_merges([[*word[:-1], word[-1] + "</w>"] for word in words])
    tokens = alphabet + [c + "</w>" for c in alphabet] + [a + b for a, b in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    with tempfile.TemporaryDirectory(prefix="selma-tiny-clip-") as tmp:
        # Written as files (not passed as dicts) so the same code works on transformers 4 (python
        # tokenizer reading vocab_file/merges_file) and 5 (tokenizers backend).
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
        (Path(tmp) / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(tmp, model_max_length=max_length)


def _clip_text_config(
    tokenizer: CLIPTokenizer, *, hidden_act: str, projection_dim: int = 32, layers: int = 2
) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        hidden_act=hidden_act,
        projection_dim=projection_dim,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def _tiny_vae(sample_size: int) -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        sample_size=sample_size,
    )


def _scheduler_config(prediction_type: str) -> dict:
    # SD1.5's training schedule; "leading" spacing with steps_offset 1 as its scheduler config ships.
    return {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "prediction_type": prediction_type,
        "steps_offset": 1,
        "timestep_spacing": "leading",
    }


def _check_args(sample_size: int, prediction_type: str) -> None:
    if sample_size < 8 or sample_size % 8:
        raise ValueError(f"sample_size must be a positive multiple of 8 (pixels), got {sample_size!r}")
    if prediction_type not in ("epsilon", "v_prediction"):
        raise ValueError(f"prediction_type must be 'epsilon' or 'v_prediction', got {prediction_type!r}")


def build_tiny_sd(
    path: str | Path | None = None, *, seed: int = 0, sample_size: int = 32, prediction_type: str = "epsilon"
) -> StableDiffusionPipeline:
    """A Stable Diffusion 1.x pipeline with random tiny weights (about 1.8M parameters).

    ``sample_size`` is the default image side in pixels (the VAE halves it, so the UNet sees
    ``sample_size // 2`` latents). With ``path``, the pipeline is also saved there as a normal diffusers
    folder that ``StableDiffusionPipeline.from_pretrained(path)`` loads offline.
    """
    _check_args(sample_size, prediction_type)
    tokenizer = build_tiny_clip_tokenizer()
    with _seeded(seed, 0):
        # Attention on the high-resolution level, a plain block below: SD1.5's pattern, scaled down.
        unet = UNet2DConditionModel(
            sample_size=sample_size // 2,
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=2,
        )
    with _seeded(seed, 1):
        vae = _tiny_vae(sample_size)
    with _seeded(seed, 2):
        text_encoder = CLIPTextModel(_clip_text_config(tokenizer, hidden_act="quick_gelu"))
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(**_scheduler_config(prediction_type), clip_sample=False, set_alpha_to_one=False),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if path is not None:
        pipe.save_pretrained(path)
    return pipe


def build_tiny_sdxl(
    path: str | Path | None = None, *, seed: int = 0, sample_size: int = 32, prediction_type: str = "epsilon"
) -> StableDiffusionXLPipeline:
    """An SDXL pipeline with random tiny weights: two tiny CLIP text encoders sharing one tokenizer.

    The UNet's cross-attention width is the two encoders' hidden sizes concatenated (32 + 32) and its
    ``text_time`` embedding takes the pooled projection (32) plus six size/crop numbers (6 x 8), as SDXL
    wires them. ``sample_size`` and ``path`` as in `build_tiny_sd`.
    """
    _check_args(sample_size, prediction_type)
    tokenizer = build_tiny_clip_tokenizer()
    with _seeded(seed, 0):
        unet = UNet2DConditionModel(
            sample_size=sample_size // 2,
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=2,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2),
            cross_attention_dim=64,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=6 * 8 + 32,
        )
    with _seeded(seed, 1):
        vae = _tiny_vae(sample_size)
    with _seeded(seed, 2):
        text_encoder = CLIPTextModel(_clip_text_config(tokenizer, hidden_act="quick_gelu"))
    with _seeded(seed, 3):
        text_encoder_2 = CLIPTextModelWithProjection(_clip_text_config(tokenizer, hidden_act="gelu"))
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(**_scheduler_config(prediction_type)),
        add_watermarker=False,
    )
    if path is not None:
        pipe.save_pretrained(path)
    return pipe


_CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|endoftext|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def byte_level_tokenizer(words: list[str], special_tokens: list[str], max_length: int) -> PreTrainedTokenizerFast:
    """GPT-2-style byte-level BPE over `words` (each with and without its leading space, so "yes" and " yes" are
    two tokens, as in real BPE vocabularies), "<|endoftext|>" as bos/eos/pad/unk, plus `special_tokens`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    table = _bytes_to_unicode()
    space = table[ord(" ")]
    merges = _learn_merges([list(w) for w in words] + [[space, *w] for w in words])
    tokens = list(dict.fromkeys(list(table.values()) + [a + b for a, b in merges]))
    backend = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=special_tokens,
        model_max_length=max_length,
    )


def _causal_lm_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE over the same word list, with a chat template."""
    tokenizer = byte_level_tokenizer(_word_list(), ["<|system|>", "<|user|>", "<|assistant|>"], 1024)
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer


def build_tiny_causal_lm(path: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny GPT-2 (random weights, 2 layers, width 32) and its tokenizer into ``path``.

    The folder loads offline with ``AutoModelForCausalLM.from_pretrained(path)`` and
    ``AutoTokenizer.from_pretrained(path)``; the tokenizer has eos/pad tokens and a chat template, so
    ``apply_chat_template`` works. Its generations are gibberish, which is all a backend test needs.
    """
    path = Path(path)
    tokenizer = _causal_lm_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=tokenizer.model_max_length,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with _seeded(seed, 0):
        model = GPT2LMHeadModel(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def sd15_unet_config() -> dict:
    """The UNet2DConditionModel config of Stable Diffusion 1.5 (859,520,964 parameters), written out."""
    return {
        "sample_size": 64,
        "in_channels": 4,
        "out_channels": 4,
        "center_input_sample": False,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "block_out_channels": [320, 640, 1280, 1280],
        "layers_per_block": 2,
        "downsample_padding": 1,
        "mid_block_scale_factor": 1,
        "act_fn": "silu",
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
        "cross_attention_dim": 768,
        "attention_head_dim": 8,
    }


def build_sd15_unet(
    device: str | torch.device = "meta", dtype: torch.dtype = torch.float32, seed: int = 0
) -> UNet2DConditionModel:
    """An SD1.5-size UNet with random weights; on ``"meta"`` it takes no memory (for counting parameters)."""
    with _seeded(seed, 0), torch.device(device):
        unet = UNet2DConditionModel(**sd15_unet_config())
    # nn.Module.to, not ModelMixin.to: diffusers 0.42 warns about fp32-kept modules on every dtype cast,
    # even when the model has none.
    return torch.nn.Module.to(unet, dtype=dtype) if dtype != torch.float32 else unet
