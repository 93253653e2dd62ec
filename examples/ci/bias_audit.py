"""A bias audit: the demographic parity difference between the two groups, as JSON.

    python examples/ci/bias_audit.py model data/test.csv

It is |P(churn predicted | group 0) - P(churn predicted | group 1)| on the test data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _model import load, predict, read_csv

model_dir, test_csv = Path(sys.argv[1]), Path(sys.argv[2])
rows = read_csv(test_csv)
predicted = predict(load(model_dir), rows[:, :2])
rates = [float(predicted[rows[:, 2] == g].mean()) for g in (0, 1)]
gap = abs(rates[0] - rates[1])
print(json.dumps({"demographic_parity_difference": round(gap, 4), "sample_size": len(rows)}))
