"""Small sample artifacts shipped with ailedger for the demo, the docs and the tests.

- ``model/``: a tiny Hugging Face style folder (config, tokenizer, a 9-tensor safetensors file);
  regenerated deterministically by ``make_sample_model.py``.
- ``data/``: ``patients.csv`` (300 rows) and ``events.jsonl`` (200 lines) of synthetic records;
  regenerated deterministically by ``make_sample_data.py``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLES_DIR", "SAMPLE_DATA", "SAMPLE_MODEL"]

SAMPLES_DIR = Path(__file__).resolve().parent
SAMPLE_MODEL = SAMPLES_DIR / "model"
SAMPLE_DATA = SAMPLES_DIR / "data"
