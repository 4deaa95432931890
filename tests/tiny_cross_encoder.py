"""A tiny random BERT cross-encoder saved to a folder, so tests load a real sentence-transformers `CrossEncoder`
offline in about a second (the same path as a real model id or folder). Random weights: scores are
deterministic but carry no meaning."""

from __future__ import annotations

from pathlib import Path


def build_tiny_cross_encoder(folder: str | Path, *, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from tests.tiny_clip import _tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer(vocab_size=300)
    tok.model_max_length = 64
    config = BertConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, max_position_embeddings=64, num_labels=1,
                        pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
