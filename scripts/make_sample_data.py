"""Regenerate src/ailedger/demos/samples/data/ (committed; run once): a small synthetic dataset.

    .venv/bin/python scripts/make_sample_data.py

``patients.csv`` (300 rows) and ``events.jsonl`` (200 lines) are made from a seeded generator,
so rerunning reproduces the same bytes. Every value is invented.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "ailedger" / "samples" / "data"
_SITES = ["north", "south", "east", "west", "central"]
_FINDINGS = ["normal", "nodule", "effusion", "opacity", "fracture", "cardiomegaly"]


def main() -> None:
    rnd = random.Random(20261125)
    OUT.mkdir(exist_ok=True)
    with (OUT / "patients.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["patient_id", "age", "sex", "site", "finding", "note"])
        for i in range(300):
            note = rnd.choice(["", "follow-up", "urgent, call back", 'said "fine"'])
            writer.writerow(
                [f"P{i:05d}", rnd.randint(18, 95), rnd.choice("FM"), rnd.choice(_SITES),
                 rnd.choice(_FINDINGS), note]
            )  # fmt: skip
    with (OUT / "events.jsonl").open("w", encoding="utf-8") as f:
        for i in range(200):
            event = {
                "event": i,
                "patient": f"P{rnd.randrange(300):05d}",
                "model": rnd.choice(["triage-v1", "triage-v2"]),
                "score": round(rnd.random(), 4),
                "flagged": rnd.random() < 0.1,
            }
            f.write(json.dumps(event, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
