"""Predicate fields an artifact determines: what ``attest dataset|model --subject PATH`` fills in.

A dataset or model statement made from a path carries the fields the tool computes from the
bytes: a dataset's Merkle ``root``, ``size``, ``scheme``, ``format`` and ``metadata_hash``
(the same fields ``Registry.register_dataset`` signs), a model's manifest (``hashing``,
``serialization``, ``resources``), ``subject_digest`` and ``tensor_root``.
:func:`fill_predicate` merges them with the fields a user gives:

- a field the artifact determines may be given only with the value the artifact gives
  (compared after the predicate's own parsing, so ``size`` given as the text ``12`` is 12);
  another value is :class:`~ailedger.errors.InvalidInput` naming the field, never silently
  replaced;
- what the artifact cannot tell (training metadata, ``schema_hash``) is the user's;
- ``defaults`` (``location``: where the artifact was fingerprinted) apply where the user gave
  nothing, since a user may name the canonical place of the same bytes instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import rfc8785
from pydantic import TypeAdapter, ValidationError

from ailedger.attest.predicates import ModelPredicate, Predicate, validation_message
from ailedger.errors import InvalidInput

if TYPE_CHECKING:
    from ailedger.fingerprint.dataset import DatasetFingerprint
    from ailedger.fingerprint.model import ModelFingerprint

__all__ = ["dataset_fields", "fill_predicate", "model_fields"]

_SHOWN = 24  # characters of a value shown in a conflict message


def dataset_fields(fp: DatasetFingerprint) -> dict[str, Any]:
    """The dataset predicate fields ``fp`` determines (``metadata_hash`` binds how it was
    read: CSV header, ``skip_lines``, ``header_row``, Parquet schema)."""
    metadata_hash = hashlib.sha256(rfc8785.dumps(fp.metadata)).hexdigest()
    return {
        "root": fp.root.hex(),
        "size": fp.size,
        "scheme": fp.scheme,
        "format": fp.format,
        "metadata_hash": f"sha256:{metadata_hash}",
    }


def model_fields(fp: ModelFingerprint) -> dict[str, Any]:
    """The model predicate fields ``fp`` determines: the model-signing manifest, its subject
    digest and (with safetensors files fingerprinted per tensor) the tensor root."""
    return ModelPredicate.from_manifest(fp.to_dict()).to_dict()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _first_difference(mine: Any, theirs: Any, where: str) -> tuple[str, Any, Any]:
    """Where two different JSON values first differ: (path, one part, the other part)."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                return _first_difference(mine.get(key), theirs.get(key), f"{where}.{key}")
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            if a != b:
                return _first_difference(a, b, f"{where}[{i}]")
    return where, mine, theirs


def _parse_field(cls: type[Predicate], name: str, value: Any) -> Any:
    """``value`` as the predicate's field ``name`` parses it (as JSON data)."""
    info = cls.model_fields[name]
    annotation: Any = info.annotation
    if info.metadata:  # constraints (min_length, validators) pydantic keeps beside the type
        annotation = Annotated[(annotation, *info.metadata)]
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    try:
        return adapter.dump_python(adapter.validate_python(value), mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in (name, *first["loc"]))
        raise InvalidInput(
            f"invalid {cls.NAME} predicate: field '{where}': {first['msg']}"
        ) from None


def fill_predicate(
    cls: type[Predicate],
    given: Mapping[str, Any],
    computed: Mapping[str, Any],
    *,
    source: str,
    defaults: Mapping[str, Any] | None = None,
) -> Predicate:
    """The ``cls`` predicate of ``computed`` fields (from the artifact ``source``), the
    user's ``given`` fields and ``defaults``; :class:`InvalidInput` if a given field says
    otherwise than the artifact."""
    for name, value in computed.items():
        if name not in given:
            continue
        mine, theirs = _parse_field(cls, name, given[name]), _parse_field(cls, name, value)
        if mine != theirs:
            where, one, other = _first_difference(mine, theirs, name)
            if where == name:  # a scalar: show it as given (``size=3`` says '3')
                one = given[name]
            raise InvalidInput(
                f"{cls.NAME} predicate field '{where}' is given as {_show(one)}, but "
                f"{source} gives {_show(other)}",
                hint="leave the field out (it is computed from the --subject path), or "
                "attest the artifact it describes",
            )
    try:
        return cls.model_validate({**(defaults or {}), **given, **computed})
    except ValidationError as exc:
        raise InvalidInput(validation_message(exc, f"{cls.NAME} predicate")) from None
