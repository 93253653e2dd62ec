"""The demo's provenance workflow: train, register, evaluate, approve, gate, deploy, tamper,
roll back, trace, anchor, infer; every step through the library, on the workspace's log.

The registry runs over the chain backend on the workspace's embedded chain: organisations
and roles live in the Membership contract, versions, approvals, deployments and the
environment's approval requirement in ModelRegistry, and the log's checkpoints are anchored
in LogAnchors. The admin key deploys the contracts, so it also sets the requirement and
signs the deployments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ailedger.chain import Chain
from ailedger.chain.backends import open_workspace_chain
from ailedger.chain.deployments import Deployment
from ailedger.demos import _ml as ml
from ailedger.demos._chain import anchor_log, deploy_and_grant, receipt_checked, requirement_text
from ailedger.demos._steps import IDENTITIES, Step
from ailedger.errors import IntegrityError
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import Keystore, Secp256k1Signer
from ailedger.registry import Recorded, Registry, VersionRef
from ailedger.registry._chain import ChainBackend
from ailedger.registry.evaluation import EvaluationResult, record_evaluation
from ailedger.registry.lineage import lineage
from ailedger.registry.policy import load_policy
from ailedger.registry.trace import ServingTrace, trace_at, trace_output
from ailedger.workspace import Workspace

__all__ = ["DEMO_POLICY", "run_workflow"]

#: The release policy the demo writes into its workspace and gates with.
DEMO_POLICY = """\
# The demo's release policy (the format: examples/policy.toml).
version = 1

[all]
max_age = "30d"
artifact_must_match = true      # the model on disk must still match its registered digest

[all.evaluations.accuracy]
threshold = "accuracy >= 0.9"
roles = ["qa"]

[all.audits.bias-audit]         # the fairness audit must exist and have passed
roles = ["auditor"]

[env.prod]
min_organisations = 2

[env.prod.approvals]
qa = 1
auditor = 1
"""

ENV = "prod"
DATA = VersionRef("breast-cancer-train", "1")
HOLDOUT = VersionRef("breast-cancer-holdout", "1")
V1 = VersionRef("cancer-classifier", "1")
V2 = VersionRef("cancer-classifier", "2")
PARAMS = {V1: {"C": 1.0, "max_iter": 1000}, V2: {"C": 0.05, "max_iter": 1000}}
ACCURACY = "accuracy >= 0.9"
MAX_GAP = "accuracy_gap <= 0.1"


@dataclass
class _Run:
    workdir: Path
    workspace: Workspace
    keystore: Keystore
    signers: dict[str, Secp256k1Signer]
    record: Callable[[Step], None]
    split: ml.Split
    policy_path: Path
    chain: Chain
    deployment: Deployment
    backend: ChainBackend
    holdout_root: str = ""

    def registry(self) -> Registry:
        keys = self.keystore.list_keys()
        return Registry.open(self.workspace, keys=keys, backend=self.backend)

    def on_chain(self, ref: VersionRef) -> bool:
        """Whether ModelRegistry says ``ref`` serves :data:`ENV` now."""
        return self.backend.registry.current(ENV) == self.backend.version_id(ref)

    def approved_on_chain(self, ref: VersionRef) -> bool:
        """Whether ModelRegistry counts the qa and the auditor approval of ``ref`` in
        :data:`ENV` (from current members, re-checked now)."""
        count = self.backend.registry.approval_count
        vid = self.backend.version_id(ref)
        return all(count(vid, role, ENV) == 1 for role in ("qa", "auditor"))

    def model_dir(self, ref: VersionRef) -> Path:
        return self.workdir / "models" / f"{ref.name}-{ref.version}"


def _entries(*recorded: Recorded) -> str:
    return ", ".join(str(r.log_index) for r in recorded)


def _signed(recorded: Recorded) -> datetime:
    """The signed time of a recorded statement (what a trace is proven against)."""
    return datetime.fromisoformat(str(recorded.predicate["time"]))


def _train(run: _Run, reg: Registry, ref: VersionRef) -> tuple[Any, Recorded]:
    params = PARAMS[ref]
    model = ml.train(run.split, params)
    path = ml.save_model(model, params, run.split, run.model_dir(ref))
    recorded = reg.register_model(
        path,
        ref,
        run.signers["trainer"],
        datasets=[DATA],
        params=params,
        code_revision="ailedger-demo",
        team="acme-ml",
    )
    return model, recorded


def _evaluate(run: _Run, reg: Registry, ref: VersionRef, model: Any) -> list[EvaluationResult]:
    tool = f"scikit-learn {ml.sklearn_version()}"
    size = len(run.split.y_test)
    acc = record_evaluation(
        "accuracy",
        {"accuracy": round(ml.accuracy(model, run.split), 6)},
        [ACCURACY],
        sample_size=size,
        dataset_root=run.holdout_root,
        tool=tool,
    )
    gap = record_evaluation(
        "bias-audit",
        ml.group_accuracy_gap(model, run.split),
        [MAX_GAP],
        sample_size=size,
        dataset_root=run.holdout_root,
        tool=tool,
    )
    reg.record_evaluation(ref, acc, run.signers["qa"])
    reg.record_evaluation(ref, gap, run.signers["auditor"])
    return [acc, gap]


def _approve_and_deploy(run: _Run, reg: Registry, ref: VersionRef) -> tuple[str, Recorded]:
    policy = load_policy(run.policy_path)
    reg.approve(ref, "qa", run.signers["qa"], comment=f"holdout metrics reviewed for {ref}")
    reg.approve(ref, "auditor", run.signers["auditor"], comment="bias audit within bounds")
    gate = reg.gate(ref, policy, ENV)
    deployed = reg.deploy(ref, ENV, run.signers["admin"], policy)
    return f"gate {len(gate.met)}/{len(gate.met) + len(gate.unmet)} met", deployed


def _eval_line(results: list[EvaluationResult]) -> str:
    acc, gap = results
    return (
        f"accuracy {acc.metrics['accuracy']:.3f} ({ACCURACY}), accuracy gap between "
        f"texture groups {gap.metrics['accuracy_gap']:.3f} ({MAX_GAP})"
    )


def _step_train_v1(run: _Run, reg: Registry) -> Any:
    data_dir = run.workdir / "data"
    data_dir.mkdir()
    split = run.split
    train_csv, holdout_csv = data_dir / "train.csv", data_dir / "holdout.csv"
    rows = ml.write_csv(train_csv, split.features, split.x_train, split.y_train)
    ml.write_csv(holdout_csv, split.features, split.x_test, split.y_test)
    trainer = run.signers["trainer"]
    ds = reg.register_dataset(train_csv, DATA, trainer)
    ho = reg.register_dataset(holdout_csv, HOLDOUT, trainer)
    run.holdout_root = str(ho.predicate["root"])
    model, mv = _train(run, reg, V1)
    run.record(
        Step(
            "train v1 and register data and model",
            f"LogisticRegression(C={PARAMS[V1]['C']}) on {rows} rows of scikit-learn's "
            f"breast-cancer data; {DATA}, {HOLDOUT} and {V1} signed by the trainer (acme-ml), "
            f"log entries {_entries(ds, ho, mv)}",
            True,
            data={"datasets": [ds.to_dict(), ho.to_dict()], "model": mv.to_dict()},
        )
    )
    return model


def _step_evaluate(run: _Run, reg: Registry, ref: VersionRef, model: Any) -> None:
    results = _evaluate(run, reg, ref, model)
    run.record(
        Step(
            f"evaluate {ref} and audit it for bias",
            _eval_line(results) + "; signed by qa (acme-ml) and auditor (audit-co)",
            all(r.passed for r in results),
            data={"evaluations": [r.to_dict() for r in results]},
        )
    )


def _step_release(run: _Run, reg: Registry, ref: VersionRef) -> Recorded:
    gate, deployed = _approve_and_deploy(run, reg, ref)
    run.record(
        Step(
            f"approve, gate and deploy {ref} to {ENV}",
            f"approved by qa (acme-ml) and auditor (audit-co), on-chain too; {gate} of "
            f"policy.toml; deploy logged (entry {deployed.log_index}) and accepted by "
            f"ModelRegistry's own gate ({requirement_text(run.backend, ENV)})",
            reg.current(ENV) == ref and run.on_chain(ref) and run.approved_on_chain(ref),
            data={"deploy": deployed.to_dict()},
        )
    )
    return deployed


def _step_v2(run: _Run, reg: Registry) -> Recorded:
    model, mv = _train(run, reg, V2)
    results = _evaluate(run, reg, V2, model)
    gate, deployed = _approve_and_deploy(run, reg, V2)
    run.record(
        Step(
            f"train v2, evaluate, approve and deploy it to {ENV}",
            f"C={PARAMS[V2]['C']}: {_eval_line(results)}; {gate}; {V2} serves {ENV} "
            f"(entry {deployed.log_index}, replacing {deployed.predicate.get('previous_version')})",
            reg.current(ENV) == V2
            and run.on_chain(V2)
            and run.approved_on_chain(V2)
            and all(r.passed for r in results),
            data={"model": mv.to_dict(), "deploy": deployed.to_dict()},
        )
    )
    return deployed


def _step_tamper(run: _Run, reg: Registry) -> None:
    weights = run.model_dir(V2) / ml.MODEL_FILE
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    weights.write_bytes(bytes(raw))
    result = reg.gate(V2, load_policy(run.policy_path), ENV)
    codes = [u.code for u in result.unmet]
    why = "; ".join(f"[{u.code}] {u.message}" for u in result.unmet) or "the gate passed"
    run.record(
        Step(
            f"change one byte of {V2}'s model file, gate again",
            f"rejected: {why}",
            codes == ["artifact-mismatch"],
            expected_failure=True,
            data={"gate": result.to_dict()},
        )
    )


def _step_rollback(run: _Run, reg: Registry, deployed_v2: Recorded) -> None:
    back = reg.rollback(ENV, run.signers["admin"], to=V1)
    run.record(
        Step(
            f"roll {ENV} back to {V1}",
            f"rollback from {back.predicate.get('previous_version')} signed and logged, "
            f"entry {back.log_index}; ModelRegistry.rollbackTo: {V1} serves {ENV} on-chain",
            reg.current(ENV) == V1 and run.on_chain(V1),
            data={"rollback": back.to_dict()},
        )
    )
    mid = _signed(deployed_v2) + (_signed(back) - _signed(deployed_v2)) / 2
    before = trace_at(reg, ENV, mid)
    after = trace_at(reg, ENV, datetime.now(UTC))
    before.verify()
    after.verify()

    def says(t: ServingTrace) -> str:
        return (
            f"at {t.at.isoformat(timespec='milliseconds')} {t.ref} ({t.action}, entry "
            f"{t.event.entry.index}, inclusion proof in a {t.event.proof.tree_size}-entry tree)"
        )

    run.record(
        Step(
            f"trace {ENV} before and after the rollback",
            f"{says(before)}; {says(after)}; both proofs verify",
            before.ref == V2 and after.ref == V1,
            data={"before": before.to_dict(), "after": after.to_dict()},
        )
    )


def _step_anchor(run: _Run, reg: Registry, deployed_v1: Recorded) -> dict[str, Any]:
    anchored, anchors = anchor_log(reg.log, run.workspace, run.chain, run.deployment, run.signers)
    rec = anchored.record
    run.record(
        Step(
            "anchor the log on the embedded chain",
            f"checkpoint of size {rec.size} signed by the log key and cosigned (EIP-712) by "
            f"the witness (audit-co); LogAnchors anchor #{rec.index} in block {rec.block}",
            True,
            data={"anchor": anchored.to_dict()},
        )
    )
    path = run.workdir / f"{V1.name}-{V1.version}.deploy.receipt.json"
    offline, onchain = receipt_checked(
        reg.log, run.workspace, anchors, run.signers["log"], deployed_v1.log_index, path
    )
    run.record(
        Step(
            f"receipt for the {V1} deployment, checked offline and on-chain",
            f"entry {offline.index} of a {offline.tree_size}-entry tree: signature, inclusion "
            f"and checkpoint hold offline; the chain's anchor #{onchain.anchor.index} covers it",
            offline.index == deployed_v1.log_index and offline.log_key_trusted,
            data={"receipt": str(path), "anchor": onchain.to_dict()},
        )
    )
    return {"chain_id": rec.chain_id, "anchor": rec.index, "block": rec.block, "size": rec.size}


def _step_inference(run: _Run, reg: Registry) -> str:
    path = run.model_dir(V1)
    registered = reg.model(V1).digest
    if f"sha256:{fingerprint_model(path).subject_digest.hex()}" != registered:
        raise IntegrityError(f"{path} no longer matches {V1}; refusing to unpickle it")
    model = ml.load_model(path)
    inp, out, label = ml.predict_one(model, run.split, 0)
    folder = run.workdir / "inference"
    folder.mkdir()
    (folder / "input.json").write_bytes(inp)
    (folder / "output.json").write_bytes(out)
    in_digest, out_digest = ml.sha256_digest(inp), ml.sha256_digest(out)
    served = reg.current(ENV)
    assert served is not None
    recorded = reg.record_inference(served, in_digest, out_digest, run.signers["trainer"])
    found = trace_output(reg, in_digest)
    for item in found:
        item.verify()
    run.record(
        Step(
            "record one prediction and trace its output",
            f"{served} (checked against its digest, then loaded) says {label}; inference "
            f"record entry {recorded.log_index}; trace output {in_digest[:19]}... finds "
            f"{', '.join(str(f.ref) for f in found)} with an inclusion proof",
            [f.ref for f in found] == [V1] and found[0].output_digest == out_digest,
            data={"inference": recorded.to_dict(), "trace": [f.to_dict() for f in found]},
        )
    )
    return in_digest


def _holds(backend: ChainBackend, signer: Secp256k1Signer, role: str) -> bool:
    found = backend.role_of(signer.keyid)
    return found is not None and role in found[0]


def run_workflow(
    workdir: Path,
    workspace: Workspace,
    keystore: Keystore,
    signers: dict[str, Secp256k1Signer],
    record: Callable[[Step], None],
) -> dict[str, Any]:
    """Run the workflow steps in ``workspace`` and return the summary."""
    policy_path = workdir / "policy.toml"
    policy_path.write_text(DEMO_POLICY, encoding="utf-8")
    with open_workspace_chain(workspace) as chain:  # the workspace's [chain]: embedded
        deployment, granted = deploy_and_grant(workspace, chain, signers)
        backend = ChainBackend.from_deployment(chain, deployment, keys=keystore.list_keys())
        record(
            Step(
                "deploy the contracts on the embedded chain, grant roles",
                f"Membership, LogAnchors and ModelRegistry on chain {chain.chain_id}, "
                f"administered by the admin key; Membership grants {', '.join(granted)}",
                all(_holds(backend, signers[n], r) for n, (_, r) in IDENTITIES.items() if r),
                data={"deployment": deployment.to_dict()},
            )
        )
        split = ml.load_split()
        run = _Run(
            workdir=workdir,
            workspace=workspace,
            keystore=keystore,
            signers=signers,
            record=record,
            split=split,
            policy_path=policy_path,
            chain=chain,
            deployment=deployment,
            backend=backend,
        )
        with run.registry() as reg:
            model = _step_train_v1(run, reg)
            _step_evaluate(run, reg, V1, model)
            deployed_v1 = _step_release(run, reg, V1)
            deployed_v2 = _step_v2(run, reg)
            _step_tamper(run, reg)
            _step_rollback(run, reg, deployed_v2)
            anchor = _step_anchor(run, reg, deployed_v1)
            input_digest = _step_inference(run, reg)
            tree = lineage(reg, V1)
            return {
                "serving": {ENV: str(reg.current(ENV))},
                "models": [str(V1), str(V2)],
                "log_entries": reg.log.size(),
                "chain_id": chain.chain_id,
                "contracts": {n: r.address for n, r in deployment.contracts.items()},
                "anchor": anchor,
                "lineage": {
                    "model": str(V1),
                    "datasets": len(tree.datasets),
                    "evaluations": len(tree.evaluations),
                    "approvals": len(tree.approvals),
                    "deployment_events": len(tree.deployments),
                },
                "traced_input": input_digest,
            }
