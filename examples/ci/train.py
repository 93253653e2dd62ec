"""Make a small tabular dataset and train a logistic-regression model on it (numpy only).

    python examples/ci/train.py --data data --model model [--label-noise 0.0]

Writes data/train.csv, data/test.csv and model/{model.json,config.json}. ``--label-noise``
flips that share of the training labels: 0.5 trains a useless model, which the evaluation
catches and the gate then blocks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FEATURES = ["tenure", "spend"]


def make_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, 2))
    group = rng.integers(0, 2, size=n)
    label = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return np.column_stack([x, group, label])


def write_csv(path: Path, rows: np.ndarray) -> None:
    lines = ["tenure,spend,group,churned"]
    lines += [f"{a:.6f},{b:.6f},{int(g)},{int(y)}" for a, b, g, y in rows]
    path.write_text("\n".join(lines) + "\n")


def fit(x: np.ndarray, y: np.ndarray, steps: int = 500, lr: float = 0.5) -> np.ndarray:
    xb = np.column_stack([x, np.ones(len(x))])
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-xb @ w))
        w -= lr * xb.T @ (p - y) / len(y)
    return w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--model", type=Path, default=Path("model"))
    parser.add_argument("--label-noise", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    train, test = make_rows(rng, 600), make_rows(rng, 300)
    args.data.mkdir(parents=True, exist_ok=True)
    write_csv(args.data / "train.csv", train)
    write_csv(args.data / "test.csv", test)
    labels = train[:, 3].copy()
    flip = rng.random(len(labels)) < args.label_noise
    labels[flip] = 1 - labels[flip]
    w = fit(train[:, :2], labels)
    args.model.mkdir(parents=True, exist_ok=True)
    model = {"features": FEATURES, "coef": w[:2].tolist(), "intercept": float(w[2])}
    (args.model / "model.json").write_text(json.dumps(model, indent=2) + "\n")
    config = {"kind": "logistic-regression", "label_noise": args.label_noise, "seed": args.seed}
    (args.model / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(json.dumps({"trained": str(args.model), "rows": len(train)}))


if __name__ == "__main__":
    main()
