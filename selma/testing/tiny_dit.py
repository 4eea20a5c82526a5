"""Tiny random FLUX.1 and SD3 pipelines: the real diffusers classes (FluxTransformer2DModel, SD3Transformer2DModel,
AutoencoderKL, CLIP and T5 encoders) at a few hundred thousand parameters, for tests and CPU benchmarks.

Like `tiny_models`: each component is seeded on its own stream, nothing is downloaded (the tokenizers are built
from a word list), and with `path` the pipeline is saved as a diffusers folder that `from_pretrained` loads offline.
The VAE is 2x (two levels), so a 32 px image is a 16x16 latent, 8x8 patch tokens for FLUX.
"""

from __future__ import annotations

import string
from pathlib import Path

from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
)
from transformers import (
    CLIPTextModel,
    CLIPTextModelWithProjection,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
)

from .tiny_models import _clip_text_config, _learn_merges, _seeded, _word_list, build_tiny_clip_tokenizer

T5_WIDTH = 32
# SD3's T5 keeps T5-XXL's width: ComfyUI's SD3 text encoder pads the CLIP-L+G features to 4096 to stack them on it
SD3_T5_WIDTH = 4096
# FLUX.1-dev's scheduler config; schnell has use_dynamic_shifting false and shift 1.0
FLUX_SCHEDULER = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
}
SD3_SCHEDULER = {"num_train_timesteps": 1000, "shift": 3.0}  # SD3 / SD3.5's


def build_t5_tokenizer(words: list[str], max_length: int = 512) -> PreTrainedTokenizerFast:
    """A tokenizer that behaves like T5's sentencepiece one: "<pad>" 0, "</s>" 1, "<unk>" 2; every word gets the
    "▁" prefix (so a word is one token alone or in a sentence: ComfyUI tokenizes word by word); "</s>" appended."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    alphabet = ["▁", *string.ascii_letters, *string.digits, *string.punctuation]
    merges = _learn_merges([["▁", *word] for word in words if set(word) <= set(alphabet)])
    tokens = list(dict.fromkeys(["<pad>", "</s>", "<unk>", *alphabet, *(a + b for a, b in merges)]))
    backend = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=max_length
    )


def _t5(seed: int, stream: int, width: int = T5_WIDTH):
    tokenizer = build_t5_tokenizer(_word_list())
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=width,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    with _seeded(seed, stream):
        return tokenizer, T5EncoderModel(config).eval()


def _vae(seed: int, latent_channels: int, sample_size: int, scaling: float, shift: float) -> AutoencoderKL:
    with _seeded(seed, 1):
        return AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            block_out_channels=(16, 32),
            norm_num_groups=8,
            layers_per_block=1,
            latent_channels=latent_channels,
            sample_size=sample_size,
            scaling_factor=scaling,
            shift_factor=shift,
            use_quant_conv=False,
            use_post_quant_conv=False,
        )


def build_tiny_flux(
    path: str | Path | None = None, *, seed: int = 0, sample_size: int = 32, guidance_embeds: bool = True
) -> FluxPipeline:
    """A FLUX.1 pipeline with random tiny weights: guidance-distilled like dev (`guidance_embeds=False`: schnell)."""
    with _seeded(seed, 0):
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=16,  # 4 latent channels x the 2x2 packing
            num_layers=1,
            num_single_layers=2,
            attention_head_dim=8,
            num_attention_heads=2,
            joint_attention_dim=T5_WIDTH,
            pooled_projection_dim=32,
            guidance_embeds=guidance_embeds,
            axes_dims_rope=(2, 2, 4),
        )
    tokenizer = build_tiny_clip_tokenizer()
    with _seeded(seed, 2):
        text_encoder = CLIPTextModel(_clip_text_config(tokenizer, hidden_act="quick_gelu")).eval()
    tokenizer_2, text_encoder_2 = _t5(seed, 3)
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER),
        vae=_vae(seed, 4, sample_size, scaling=0.3611, shift=0.1159),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    if path is not None:
        pipe.save_pretrained(path)
    return pipe


def build_tiny_sd3(
    path: str | Path | None = None, *, seed: int = 0, sample_size: int = 32
) -> StableDiffusion3Pipeline:
    """An SD3 / SD3.5 pipeline with random tiny weights: two CLIP encoders with projection, T5, the MMDiT."""
    with _seeded(seed, 0):
        transformer = SD3Transformer2DModel(
            sample_size=sample_size // 2,
            patch_size=2,
            in_channels=4,
            num_layers=1,  # ComfyUI's MMDiT ties the depth to the width (64 per block): one block of 64
            attention_head_dim=64,
            num_attention_heads=1,
            joint_attention_dim=SD3_T5_WIDTH,
            caption_projection_dim=64,
            pooled_projection_dim=64,  # the two CLIP projections, concatenated
            out_channels=4,
            pos_embed_max_size=sample_size,
        )
    tokenizer = build_tiny_clip_tokenizer()
    with _seeded(seed, 2):
        # three layers: SD3 reads the penultimate one, which ComfyUI allows only below the last two
        text_encoder = CLIPTextModelWithProjection(_clip_text_config(tokenizer, hidden_act="gelu", layers=3)).eval()
    with _seeded(seed, 4):
        text_encoder_2 = CLIPTextModelWithProjection(_clip_text_config(tokenizer, hidden_act="gelu", layers=3))
        text_encoder_2 = text_encoder_2.eval()
    tokenizer_3, text_encoder_3 = _t5(seed, 3, SD3_T5_WIDTH)
    pipe = StableDiffusion3Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SD3_SCHEDULER),
        vae=_vae(seed, 4, sample_size, scaling=1.5305, shift=0.0609),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
        transformer=transformer,
    )
    if path is not None:
        pipe.save_pretrained(path)
    return pipe
