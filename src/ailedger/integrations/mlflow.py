"""Register every version of an MLflow registered model, from a local tracking store.

::

    versions = read_model_versions("sqlite:///mlflow.db", "churn")
    imported = import_mlflow(registry, versions, signer)

The store is read with MLflow's own client (the ``mlflow`` extra: ``mlflow-skinny`` with
SQLAlchemy and Alembic for SQLite stores), so every store layout MLflow reads is read the
same way: a file store (an ``mlruns`` directory, a path or ``file://`` URI) or a SQLite
store (``sqlite:///PATH``). No server is involved and nothing is written to the store; a
store that does not exist is :class:`NotFound` rather than created.

For each version that is ``READY``: the artifacts at the version's download location (which
must be local) are fingerprinted as the model ``NAME@VERSION``; the run's parameters become
its hyperparameters (numbers and JSON parsed as ``--param`` does) and the run's
``mlflow.source.git.commit`` tag its code revision. Each logged metric (its latest value)
becomes an evaluation statement ``mlflow:<metric>`` with the run id in its ``tool``, so a
policy can require e.g. ``"mlflow:accuracy" = "accuracy >= 0.9"``. Importing again signs
nothing new for versions and metrics already in the log.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ailedger.attest.predicates import EvaluationPredicate
from ailedger.errors import InvalidInput, NotFound
from ailedger.identity.keys import Signer
from ailedger.registry import Recorded, Registry, VersionRef
from ailedger.registry._refs import parse_param
from ailedger.registry.evaluation import record_evaluation

__all__ = [
    "CODE_REVISION_TAG",
    "EVALUATION_PREFIX",
    "ImportedVersion",
    "MlflowVersion",
    "evaluation_name",
    "import_mlflow",
    "local_artifact_path",
    "read_model_versions",
]

#: The run tag MLflow sets to the git commit of the training code.
CODE_REVISION_TAG = "mlflow.source.git.commit"
#: Evaluations made from logged metrics are named ``mlflow:<metric>``.
EVALUATION_PREFIX = "mlflow:"

_NOT_NAME = re.compile(r"[^A-Za-z0-9_.:/-]")


@dataclass(frozen=True)
class MlflowVersion:
    """One version of a registered model as the store holds it."""

    name: str
    version: str
    status: str
    source: str
    artifact_uri: str
    run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    code_revision: str | None = None


@dataclass(frozen=True)
class ImportedVersion:
    """What importing one version recorded (or why it was skipped)."""

    version: MlflowVersion
    model: Recorded | None
    evaluations: tuple[Recorded, ...] = ()
    skipped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "mlflow_version": self.version.version,
            "run_id": self.version.run_id,
            "artifact_uri": self.version.artifact_uri,
            "model": None if self.model is None else self.model.to_dict(),
            "evaluations": [e.to_dict() for e in self.evaluations],
            "skipped": list(self.skipped),
        }


def evaluation_name(metric: str) -> str:
    """``mlflow:<metric>``, with characters an evaluation name cannot hold as ``_``."""
    return EVALUATION_PREFIX + _NOT_NAME.sub("_", metric)


def local_artifact_path(uri: str) -> Path:
    """The local directory (or file) behind an artifact URI: ``file://`` or a plain path."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput(f"artifact location {uri} is on another host")
        from urllib.request import url2pathname  # costs 70 ms at start-up when imported above

        return Path(url2pathname(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(uri).absolute()
    raise InvalidInput(
        f"artifact location {uri} is not local; only file stores and local artifact roots "
        "can be fingerprinted",
        hint="download the artifacts and register them with `ailedger model register`",
    )


def _store_uri(tracking_uri: str) -> tuple[str, bool]:
    """A checked tracking URI and whether it is a file store."""
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        # As SQLAlchemy (and so MLflow) reads them: sqlite:///rel.db is relative to the
        # working directory, sqlite:////abs/path.db is absolute.
        db = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
        path = Path(db) if db and not parsed.netloc else None
        if path is None or not path.is_file():
            raise NotFound(f"no such MLflow SQLite store: {tracking_uri}")
        return "sqlite:///" + path.resolve().as_posix(), False
    if parsed.scheme in ("", "file"):
        path = local_artifact_path(tracking_uri)
        if not path.is_dir():
            raise NotFound(f"no such MLflow file store (mlruns directory): {path}")
        return path.resolve().as_uri(), True
    raise InvalidInput(
        f"unsupported tracking URI {tracking_uri!r}: use an mlruns directory, a file:// URI "
        "or sqlite:///PATH"
    )


@contextmanager
def _mlflow_env(uri: str, file_store: bool) -> Iterator[None]:
    # For the duration of the read only: MLflow 3 refuses file stores (maintenance mode)
    # unless MLFLOW_ALLOW_FILE_STORE is set, and resolves logged models (``models:/m-...``)
    # through the default tracking URI, which would otherwise create ./mlflow.db.
    settings = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri}
    if file_store:
        settings["MLFLOW_ALLOW_FILE_STORE"] = "true"
    before = {k: os.environ.get(k) for k in settings}
    quiet = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [q.level for q in quiet]
    os.environ.update(settings)
    for q in quiet:
        q.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def _quoted(name: str) -> str:
    if "'" not in name:
        return f"'{name}'"
    if '"' not in name:
        return f'"{name}"'
    raise InvalidInput(f"cannot search for a model name with both quote characters: {name!r}")


def read_model_versions(tracking_uri: str, model: str) -> list[MlflowVersion]:
    """Every version of the registered model ``model`` in the store, oldest first."""
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise NotFound(
            "the MLflow integration needs the mlflow package",
            hint="pip install 'ailedger[mlflow]'",
        ) from None
    uri, file_store = _store_uri(tracking_uri)
    with _mlflow_env(uri, file_store):
        try:
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            try:
                client.get_registered_model(model)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
                names = sorted(m.name for m in client.search_registered_models())
                raise NotFound(
                    f"no registered model {model!r} in {tracking_uri}; registered: "
                    f"{', '.join(names) or 'none'}"
                ) from None
            found: list[Any] = []
            token: str | None = None
            while True:
                page = client.search_model_versions(f"name = {_quoted(model)}", page_token=token)
                found.extend(page)
                token = page.token
                if not token:
                    break
            return [_version(client, mv) for mv in sorted(found, key=lambda v: int(v.version))]
        except MlflowException as exc:
            first = str(exc.message).splitlines()[0] if exc.message else type(exc).__name__
            raise InvalidInput(f"MLflow store {tracking_uri}: {first}") from None


def _version(client: Any, mv: Any) -> MlflowVersion:
    artifact_uri = str(client.get_model_version_download_uri(mv.name, mv.version))
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    revision: str | None = None
    if mv.run_id:
        run = client.get_run(mv.run_id)
        params = {str(k): str(v) for k, v in run.data.params.items()}
        metrics = {str(k): float(v) for k, v in run.data.metrics.items()}
        revision = run.data.tags.get(CODE_REVISION_TAG) or None
    return MlflowVersion(
        name=str(mv.name),
        version=str(mv.version),
        status=str(mv.status),
        source=str(mv.source),
        artifact_uri=artifact_uri,
        run_id=str(mv.run_id) if mv.run_id else None,
        params=params,
        metrics=metrics,
        code_revision=revision,
    )


def _hyperparameters(params: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, raw in sorted(params.items()):
        _, value = parse_param(f"{key}={raw}")
        out[key] = value
    return out


def _recorded_metrics(registry: Registry, ref: VersionRef) -> set[tuple[str, str]]:
    """(evaluation name, metrics) of the evaluations already logged about ``ref``."""
    seen: set[tuple[str, str]] = set()
    for ev in registry.evidence(registry.model(ref)):
        pred = ev.predicate
        if isinstance(pred, EvaluationPredicate) and pred.name is not None:
            seen.add((pred.name, repr(sorted((pred.metrics or {}).items()))))
    return seen


def import_mlflow(
    registry: Registry,
    versions: Sequence[MlflowVersion],
    signer: Signer,
    *,
    name: str | None = None,
    datasets: Sequence[VersionRef] = (),
) -> list[ImportedVersion]:
    """Register each READY version (as ``name`` or its MLflow name) with its metrics.

    Every artifact location is checked before anything is signed."""
    ready = [v for v in versions if v.status == "READY"]
    paths = {}
    for v in ready:
        path = local_artifact_path(v.artifact_uri)
        if not path.exists():
            raise NotFound(f"artifacts of {v.name} version {v.version} are missing: {path}")
        paths[v.version] = path
    for d in datasets:
        registry.dataset(d)
    out: list[ImportedVersion] = []
    for v in versions:
        if v.status != "READY":
            out.append(ImportedVersion(v, None, skipped=(f"status {v.status}",)))
            continue
        ref = VersionRef(name or v.name, v.version)
        model = registry.register_model(
            paths[v.version],
            ref,
            signer,
            datasets=datasets,
            params=_hyperparameters(v.params),
            code_revision=v.code_revision,
        )
        seen = _recorded_metrics(registry, ref) if model.already else set()
        evaluations: list[Recorded] = []
        skipped: list[str] = []
        for metric, value in sorted(v.metrics.items()):
            if not math.isfinite(value):
                skipped.append(f"metric {metric} = {value} is not finite")
                continue
            result = record_evaluation(
                evaluation_name(metric), {metric: value}, tool=f"mlflow run {v.run_id}"
            )
            if (result.name, repr(sorted(result.metrics.items()))) in seen:
                continue
            evaluations.append(registry.record_evaluation(ref, result, signer))
        out.append(ImportedVersion(v, model, tuple(evaluations), tuple(skipped)))
    return out
