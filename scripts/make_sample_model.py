"""Regenerate src/ailedger/demos/samples/model/ (committed; run once): a tiny Hugging Face style folder.

    .venv/bin/python scripts/make_sample_model.py

The weights are deterministic (seeded), so rerunning reproduces the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

OUT = Path(__file__).resolve().parents[1] / "src" / "ailedger" / "samples" / "model"


def main() -> None:
    rng = np.random.default_rng(20240601)
    vocab, hidden, layers = 32, 8, 2
    tensors: dict[str, np.ndarray] = {
        "embed_tokens.weight": rng.standard_normal((vocab, hidden), dtype=np.float32),
        "lm_head.weight": rng.standard_normal((vocab, hidden), dtype=np.float32),
        "norm.weight": np.ones(hidden, dtype=np.float16),
    }
    for i in range(layers):
        tensors[f"layers.{i}.mlp.weight"] = rng.standard_normal((hidden, hidden), dtype=np.float32)
        tensors[f"layers.{i}.mlp.bias"] = np.zeros(hidden, dtype=np.float32)
        tensors[f"layers.{i}.attn.qkv"] = rng.integers(-128, 127, (3, hidden, hidden), np.int8)
    OUT.mkdir(exist_ok=True)
    save_file(tensors, str(OUT / "model.safetensors"), metadata={"format": "np"})
    config = {
        "architectures": ["TinyLM"],
        "model_type": "tiny-lm",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "torch_dtype": "float32",
    }
    (OUT / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tokens = {f"<t{i}>": i for i in range(vocab)}
    tokenizer = {"version": "1.0", "model": {"type": "WordLevel", "vocab": tokens}}
    (OUT / "tokenizer.json").write_text(json.dumps(tokenizer, indent=2) + "\n")


if __name__ == "__main__":
    main()
