"""A tiny random CLIP saved to a folder, so tests can load a real `transformers` CLIP offline in about a second.

The weights are random (seeded): vectors are deterministic but carry no meaning. The folder loads with
`AutoModel.from_pretrained` / `AutoProcessor.from_pretrained`, the same path users take with real models.
"""

from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "a photo of a cat",
    "a photo of a dog sitting on a sofa",
    "a red car parked in the street",
    "quarterly tax report for the first quarter",
    "the quick brown fox jumps over the lazy dog",
    "two kittens playing with a ball of yarn",
    "a diagram of a neural network with attention layers",
    "mountains, lakes and a blue sky at sunset",
]
_SPECIAL = ["<|startoftext|>", "<|endoftext|>"]  # ids 0 and 1; eos must not be 2 (CLIP's legacy argmax pooling)


def _tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[(t, tok.token_to_id(t)) for t in _SPECIAL],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=32,
    )


def _towers(tokenizer, image_size: int, max_text_len: int) -> tuple[dict, dict]:
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=max_text_len,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=8,
    )
    return text, vision


def _save(folder, make_model, processor, seed: int) -> Path:
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):  # seed the weights without touching the caller's RNG
        torch.manual_seed(seed)
        model = make_model().eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_clip(folder: str | Path, *, seed: int = 0, image_size: int = 32, projection_dim: int = 16) -> Path:
    """Write a tiny random CLIP model and its processor to `folder` (created if needed) and return the folder."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = _tokenizer(vocab_size=300)
    text, vision = _towers(tokenizer, image_size, max_text_len=32)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _save(folder, lambda: CLIPModel(config), processor, seed)


def build_tiny_siglip(folder: str | Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """The same for SigLIP (no projection: vectors have the text tower's width, 32; text is padded to 16 tokens)."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    tokenizer = _tokenizer(vocab_size=300)
    tokenizer.model_max_length = 16
    text, vision = _towers(tokenizer, image_size, max_text_len=16)
    config = SiglipConfig(text_config=text, vision_config=vision)
    image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size})
    processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return _save(folder, lambda: SiglipModel(config), processor, seed)


if __name__ == "__main__":
    import sys

    print(build_tiny_clip(sys.argv[1] if len(sys.argv) > 1 else "tiny-clip"))
