"""Without the ``fl-torch`` extra, ``ailedger.fl.dpsgd`` still imports and its client refuses
to be built with one line naming the extra (``test_dpsgd.py`` runs it when torch is there)."""

from __future__ import annotations

import numpy as np
import pytest

from ailedger.errors import InvalidInput


def test_without_torch_the_client_refuses_with_one_line() -> None:
    import importlib.util

    if importlib.util.find_spec("torch") and importlib.util.find_spec("opacus"):
        pytest.skip("torch and opacus are installed")
    from ailedger.fl.dpsgd import OpacusClient

    with pytest.raises(InvalidInput, match="needs torch and opacus") as info:
        OpacusClient(list, np.zeros((2, 1)), np.zeros(2), noise_multiplier=1.0,
                     max_grad_norm=1.0, delta=0.1)  # fmt: skip
    assert "fl-torch" in str(info.value.hint)
