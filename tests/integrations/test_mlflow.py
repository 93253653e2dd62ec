"""MLflow imports from real stores that the mlflow package writes (a file store and SQLite)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import mlflow
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ailedger.cli._integrations  # noqa: F401  (registers `integrations` until _app does)
from _cli import ok, run
from _workflow_util import Setup
from ailedger.errors import InvalidInput, NotFound
from ailedger.fingerprint.model import fingerprint_model
from ailedger.integrations.mlflow import evaluation_name, local_artifact_path
from ailedger.registry.evaluation import record_evaluation


def _client(uri: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # logged models resolve through it
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def make_store(setup: Setup, kind: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, Path]:
    """A store with model ``churn``: version 1 from a run's artifacts (MLflow 2 style), version
    2 from a logged model (MLflow 3 style). Returns the URI and the two artifact copies."""
    root = setup.root / "mlflow"
    root.mkdir()
    uri = (root / "mlruns").as_uri() if kind == "file" else f"sqlite:///{root / 'mlflow.db'}"
    client = _client(uri, monkeypatch)
    exp = client.create_experiment("churn", artifact_location=(root / "artifacts").as_uri())
    client.create_registered_model("churn")

    v1 = setup.model
    run1 = client.create_run(exp)
    rid1 = run1.info.run_id
    client.log_param(rid1, "C", "1.0")
    client.log_param(rid1, "solver", "lbfgs")
    client.log_metric(rid1, "accuracy", 0.5, step=0)
    client.log_metric(rid1, "accuracy", 0.93, step=1)  # the latest value counts
    client.log_metric(rid1, "f1 score", 0.88)
    client.set_tag(rid1, "mlflow.source.git.commit", "0123abc")
    client.log_artifacts(rid1, str(v1), "model")
    client.create_model_version("churn", f"{run1.info.artifact_uri}/model", run_id=rid1)
    client.set_terminated(rid1)

    v2 = setup.root / "model-v2"
    shutil.copytree(v1, v2)
    (v2 / "config.json").write_text('{"v": 2}')
    run2 = client.create_run(exp)
    rid2 = run2.info.run_id
    client.log_param(rid2, "C", "0.1")
    client.log_metric(rid2, "accuracy", 0.71)
    client.log_metric(rid2, "loss", float("nan"))  # not a number a statement can hold
    logged = client.create_logged_model(exp, name="model", source_run_id=rid2)
    client.log_model_artifacts(logged.model_id, str(v2))
    client.create_model_version(
        "churn", f"models:/{logged.model_id}", run_id=rid2, model_id=logged.model_id
    )
    return uri, v1, v2


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_import_every_version_with_params_and_metrics(
    setup: Setup, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, v1, v2 = make_store(setup, kind, monkeypatch)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # the importer allows the file store itself
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # and needs no global tracking URI
    doc = ok(["integrations", "mlflow", "import", "--tracking-uri", uri, "--model", "churn",
              "--key", "trainer"])  # fmt: skip
    assert not (setup.root / "mlflow.db").exists()  # nothing written beside the store
    first, second = doc["versions"]
    for item, path in ((first, v1), (second, v2)):
        assert item["model"]["digest"] == f"sha256:{fingerprint_model(path).subject_digest.hex()}"
    assert first["model"]["ref"] == "churn@1"
    training = first["model"]["predicate"]["training"]
    assert training["hyperparameters"] == {"C": 1.0, "solver": "lbfgs"}
    assert training["code_revision"] == "0123abc"
    evals = {e["predicate"]["name"]: e["predicate"] for e in first["evaluations"]}
    assert set(evals) == {"mlflow:accuracy", "mlflow:f1_score"}
    assert evals["mlflow:accuracy"]["metrics"] == {"accuracy": 0.93}
    assert evals["mlflow:f1_score"]["metrics"] == {"f1 score": 0.88}
    assert evals["mlflow:accuracy"]["tool"] == f"mlflow run {first['run_id']}"
    assert "code_revision" not in second["model"]["predicate"]["training"]
    assert [e["predicate"]["metrics"] for e in second["evaluations"]] == [{"accuracy": 0.71}]
    assert second["skipped"] == ["metric loss = nan is not finite"]

    # the metrics are evidence the gate reads
    policy = setup.root / "mlflow-policy.toml"
    policy.write_text('version = 1\n[all.evaluations]\n"mlflow:accuracy" = "accuracy >= 0.9"\n')
    assert ok(["gate", "churn@1", "--policy", policy])["passed"] is True
    blocked = run(["gate", "churn@2", "--policy", policy])
    assert blocked.exit_code == 1, blocked.output
    assert "0.71" in blocked.output

    again = ok(["integrations", "mlflow", "import", "--tracking-uri", uri, "--model", "churn",
                "--key", "trainer", "--name", "churn"])  # fmt: skip
    assert [v["model"]["already_recorded"] for v in again["versions"]] == [True, True]
    assert [v["evaluations"] for v in again["versions"]] == [[], []]
    human = run(["integrations", "mlflow", "import", "--tracking-uri", uri, "--model", "churn",
                 "--key", "trainer"])  # fmt: skip
    assert human.exit_code == 0, human.output
    assert "MLflow churn v1 (run " in human.output
    assert "churn@2: log entry" in human.output
    assert "skipped metric loss = nan is not finite" in human.output


def test_relative_sqlite_uri_is_read_as_mlflow_reads_it(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sqlite:///mlflow.db`` names ``mlflow.db`` in the working directory (SQLAlchemy's rule),
    not ``/mlflow.db``; ``sqlite:////abs/path`` stays absolute."""
    uri, v1, _ = make_store(setup, "sqlite", monkeypatch)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    store_dir = setup.root / "mlflow"
    monkeypatch.chdir(store_dir)
    assert uri == f"sqlite:///{store_dir / 'mlflow.db'}"  # the absolute form (four slashes)
    doc = ok(["integrations", "mlflow", "import", "--tracking-uri", "sqlite:///mlflow.db",
              "--model", "churn", "--key", "trainer"])  # fmt: skip
    first = doc["versions"][0]
    assert first["model"]["digest"] == f"sha256:{fingerprint_model(v1).subject_digest.hex()}"
    missing = run(["integrations", "mlflow", "import", "--tracking-uri", "sqlite:///none.db",
                   "--model", "churn", "--key", "trainer"])  # fmt: skip
    assert missing.exit_code == NotFound.exit_code, missing.output
    assert "sqlite:///none.db" in missing.output
    assert not (store_dir / "none.db").exists()


def test_bad_stores_and_names(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    uri, _, _ = make_store(setup, "file", monkeypatch)
    base = ["integrations", "mlflow", "import", "--key", "trainer"]
    missing = run([*base, "--tracking-uri", setup.root / "nope", "--model", "churn"])
    assert missing.exit_code == NotFound.exit_code, missing.output
    no_db = run([*base, "--tracking-uri", f"sqlite:///{setup.root / 'none.db'}", "--model", "x"])
    assert no_db.exit_code == NotFound.exit_code, no_db.output
    assert not (setup.root / "none.db").exists()  # never created
    unknown = run([*base, "--tracking-uri", uri, "--model", "other"])
    assert unknown.exit_code == NotFound.exit_code
    assert "registered: churn" in unknown.output
    server = run([*base, "--tracking-uri", "http://127.0.0.1:5000", "--model", "churn"])
    assert server.exit_code == InvalidInput.exit_code, server.output


def test_remote_artifacts_refuse_the_whole_import(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, _, _ = make_store(setup, "file", monkeypatch)
    client = _client(uri, monkeypatch)
    client.create_model_version("churn", "s3://bucket/churn/3")
    result = run(["integrations", "mlflow", "import", "--tracking-uri", uri, "--model", "churn",
                  "--key", "trainer"])  # fmt: skip
    assert result.exit_code == InvalidInput.exit_code, result.output
    assert "s3://bucket/churn/3" in result.output
    with setup.registry() as registry:
        assert registry.index.versions("model") == []  # checked before anything was signed


@given(st.text(min_size=1, max_size=40))
def test_every_metric_name_makes_an_evaluation_name(metric: str) -> None:
    name = evaluation_name(metric)
    assert name.startswith("mlflow:")
    assert record_evaluation(name, {"m": 1.0}).name == name


@given(st.lists(st.text(alphabet="abc xyz%#é", min_size=1, max_size=8), min_size=1, max_size=4))
def test_artifact_uris_map_back_to_paths(parts: list[str]) -> None:
    path = Path("/tmp", *parts)
    assert local_artifact_path(path.as_uri()) == path
    assert local_artifact_path(str(path)) == path
