"""Optional extras: import a package that an extra provides, or say which extra to install."""

from __future__ import annotations

from typing import Any

from ailedger.errors import InvalidInput

__all__ = ["require_sklearn"]


def require_sklearn(purpose: str = "this command trains or scores a scikit-learn model") -> Any:
    """The ``sklearn`` module, or :class:`InvalidInput` naming the ``ml`` extra."""
    try:
        import sklearn
    except ImportError:
        raise InvalidInput(
            f"{purpose}, and scikit-learn is not installed",
            hint="pip install 'ailedger[ml]' (scripts/setup.sh installs it by default)",
        ) from None
    return sklearn
