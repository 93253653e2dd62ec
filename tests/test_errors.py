from __future__ import annotations

import pytest

from ailedger import errors


def test_every_error_has_a_documented_exit_code() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, errors.AiledgerError):
            assert obj.exit_code in errors.EXIT_CODES
            assert obj.exit_code not in (0, 2)


def test_undocumented_exit_code_is_refused() -> None:
    with pytest.raises(TypeError):
        type("Bad", (errors.AiledgerError,), {"exit_code": 42})


def test_builtin_bases() -> None:
    assert issubclass(errors.InvalidInput, ValueError)
    assert issubclass(errors.NotFound, LookupError)
