"""Print the model's accuracy on the test data as JSON (the last stdout line).

python examples/ci/evaluate.py model data/test.csv
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
accuracy = float((predicted == rows[:, 3]).mean())
print(json.dumps({"accuracy": round(accuracy, 4), "sample_size": len(rows)}))
