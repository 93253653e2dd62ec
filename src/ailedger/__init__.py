"""ailedger: a shared, verifiable record of AI work across organisations."""

from __future__ import annotations

from ailedger.errors import AiledgerError

__version__ = "0.1.0"

__all__ = ["AiledgerError", "__version__"]
