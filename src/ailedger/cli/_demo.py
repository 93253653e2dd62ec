"""``ailedger demo``: the whole path, for real, in a fresh directory.

Part one shows fingerprints, proofs, signed statements, the log and receipts on the shipped
samples; part two trains a scikit-learn classifier and takes it through register, evaluate,
approve, gate, deploy, a tampered artifact, a rollback, trace, anchoring and an inference
record on the embedded chain. ``--json`` prints every step and the summary.

``demo crop-insurance`` and ``demo safety-bonus`` run the oracle examples (issue 6): sensor
batches anchored, oracle node processes (one lying), reports on-chain, payouts settled and
withdrawn, and a report that traces each payout to its inputs, model and signers.

``demo consortium`` runs the shared ledger as a service (issue 13): one ``ailedger serve``, two
``ailedger witness serve`` of other organisations, and a manufacturer, a shipper and a retailer
with workspaces of their own submitting cold-chain sensor batches, anomaly flags and
acknowledgements over HTTP; the retailer proves a flagged batch offline, an auditor queries a
shipment's trail. Every child process is stopped by its PID.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.errors import AiledgerError, ConflictError, InvalidInput

if TYPE_CHECKING:  # the demos (the whole stack) load when a demo runs, not at start-up
    from ailedger.demos._main import DemoResult, Step
    from ailedger.log import SignatureCheck
    from ailedger.service.remote import RemoteLog

__all__ = ["connect_service", "demo", "demo_app"]

DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir", help="Run in this (new or empty) directory and keep it; default: a temp dir."
    ),
]

RpcOpt = Annotated[
    str | None,
    typer.Option(
        "--rpc", help="Run on this development node (anvil) instead of the embedded chain."
    ),
]

demo_app = typer.Typer(help="Run the examples for real.")
app.add_typer(demo_app, name="demo")


def _in_workdir(directory: Path | None, go: Callable[[Path], None]) -> None:
    if directory is not None:
        directory = directory.resolve()
        if directory.exists() and any(directory.iterdir()):
            raise ConflictError(f"{directory} is not empty", hint="pass a new or empty directory")
        go(directory)
        return
    with tempfile.TemporaryDirectory(prefix="ailedger-demo-") as tmp:
        go(Path(tmp))


@demo_app.callback(invoke_without_command=True)
def demo(ctx: typer.Context, directory: DirOpt = None, as_json: JsonOpt = False) -> None:
    """Run the whole path for real: proofs on the shipped samples, then a scikit-learn model
    registered, evaluated, approved, gated, deployed, tampered with, rolled back, traced and
    anchored on the embedded chain (needs the ml extra: pip install 'ailedger[ml]').
    Subcommands run the oracle examples."""
    if ctx.invoked_subcommand is not None:
        return

    def show(step: Step) -> None:
        if not as_json:
            _show_step(step)

    def go(workdir: Path) -> None:
        from ailedger.demos._main import run_demo

        result = run_demo(workdir, on_step=show)
        if as_json:
            emit(result.to_dict(), True)
        elif result.ok:
            _summary(result, keep=directory is not None)
        if not result.ok:
            failed = [s.title for s in result.steps if not s.ok]
            raise AiledgerError(f"demo steps did not behave as expected: {', '.join(failed)}")

    _in_workdir(directory, go)


def _show_step(step: Step) -> None:
    mark = "[green]✓[/green]" if step.ok else "[red]✗[/red]"
    note = " [dim](expected rejection)[/dim]" if step.expected_failure else ""
    console.print(f"{mark} [bold]{escape(step.title)}[/bold]{note}")
    console.print(f"    {escape(step.detail)}")


def _summary(result: DemoResult, *, keep: bool) -> None:
    s = result.summary
    console.print(f"\n[green]demo passed[/green]: {len(result.steps)} steps in {result.workdir}")
    if s:
        tree = s["lineage"]
        anchor = s["anchor"]
        console.print(
            f"  prod serves {s['serving']['prod']}; models {', '.join(s['models'])}; "
            f"{s['log_entries']} log entries"
        )
        console.print(
            f"  {tree['model']}: {tree['datasets']} dataset, {tree['evaluations']} evaluations, "
            f"{tree['approvals']} approvals, {tree['deployment_events']} deployment events"
        )
        console.print(
            f"  log anchored on chain {anchor['chain_id']} at size {anchor['size']} "
            f"(anchor #{anchor['anchor']}, block {anchor['block']})"
        )
    if not keep:
        console.print("  (a temporary directory, now removed: pass --dir DIR to keep it)")
    else:
        console.print(
            f"  explore it: cd {escape(str(result.workdir))} && ailedger lineage "
            "cancer-classifier@1 (or trace, gate, verify receipt ...)"
        )


def _oracle_demo(
    run: Callable[..., dict[str, Any]],
    human: Callable[[dict[str, Any]], None],
    directory: Path | None,
    rpc: str | None,
    as_json: bool,
) -> None:
    """Run an oracle demo, printing each step as it happens (not with ``--json``). Every
    claim in its report was read back from the chain or the log and checked inside ``run``,
    which raises ClaimFailed (exit 1, naming the claim) when one does not hold."""

    def show(line: str) -> None:
        if not as_json:
            console.print(f"[green]✓[/green] {escape(line)}")

    def go(workdir: Path) -> None:
        report = run(workdir, rpc, on_step=show)
        if not as_json:
            console.print()
        emit(report, as_json, lambda: human(report))

    _in_workdir(directory, go)


def _wei(value: int) -> str:
    return f"{value / 10**18:g} ETH"


def _books(report: dict[str, Any]) -> None:
    t = report["totals"]
    mark = "[green]holds[/green]" if report["balanced"] else "[red]BROKEN[/red]"
    console.print(
        f"  books: paid {_wei(t['paid'])} + claimable {_wei(t['claimable'])} + remaining "
        f"{_wei(t['remaining'])} == deposited {_wei(t['deposited'])}: {mark}"
    )
    last = report["anchors"][-1]["anchor"]
    console.print(
        f"  {report['log_entries']} log entries, anchored on chain {report['chain_id']} "
        f"at size {last.get('size')}; lying oracle {report['lying_oracle']} "
        f"(off by {report['lie_by']}) never moved a median"
    )
    console.print(
        f"  {report['claims_checked']} claims read back from the chain and the log, all hold"
    )


def _crop_human(report: dict[str, Any]) -> None:
    console.print(
        f"[bold]crop insurance[/bold]: {len(report['farms'])} farms, threshold "
        f"{report['threshold']} bp, model sha256:{report['model_digest'][:16]}… "
        f"(log entry {report['model_log_index']})"
    )
    for farm in report["farms"]:
        scores = ", ".join(str(s) for s in farm["scores"])
        why = farm["why"]
        if why is None:
            console.print(f"  {farm['farm']}: not paid (scores {scores})")
            continue
        console.print(
            f"  [green]{farm['farm']}: paid {_wei(farm['paid_wei'])}[/green] to {farm['farmer']}"
            f" (scores {scores})"
        )
        console.print(
            f"    epoch {why['epoch']} score {why['stored_answer']} > {report['threshold']}: "
            f"batch root {why['input_root'][:16]}… (log entry {why['dataset_log_index']}), "
            f"signed by {len(why['signers'])} oracles (observations and report: log entries "
            f"{', '.join(str(i) for i in why['log_indices'])}), tx {why['settle_transaction']}"
        )
    slash = report.get("slash")
    if slash:
        console.print(
            f"  [red]lying oracle {slash['oracle']} slashed {_wei(slash['slashed'])}[/red] "
            f"(reason {slash['reason_code']}: its signed {slash['value']} is "
            f"{slash['deviation']} from the median {slash['answer']}, tolerance "
            f"{slash['tolerance']}; epoch {slash['epoch']}, report log entry "
            f"{slash['report_log_index']}, tx {slash['transaction']})"
        )
        console.print(
            f"    challenger {slash['challenger']} earns {_wei(slash['prover_share'])}, "
            f"treasury {slash['treasury']} {_wei(slash['treasury_share'])} "
            f"(read back from the StakeManager)"
        )
    _books(report)


def _bonus_human(report: dict[str, Any]) -> None:
    console.print(
        f"[bold]safety bonus[/bold]: {len(report['weeks'])} weeks at "
        f"{_wei(report['wei_per_week'])}, incident rule sha256:{report['model_digest'][:16]}… "
        f"(log entry {report['model_log_index']})"
    )
    for week in report["weeks"]:
        colour = "green" if week["paid_to"] == "contractor" else "yellow"
        console.print(
            f"  week {week['week']}: {week['stored_answer']} incidents -> "
            f"[{colour}]{week['paid_to']}[/{colour}]; batch root {week['input_root'][:16]}… "
            f"(log entry {week['dataset_log_index']}), report log entries "
            f"{', '.join(str(i) for i in week['log_indices'])}"
        )
    _books(report)


@demo_app.command("samples")
def samples_cmd(
    out: Annotated[Path, typer.Argument(help="Directory to write model/ and data/ into.")] = Path(
        "."
    ),
    as_json: JsonOpt = False,
) -> None:
    """Copy the bundled samples here to try the commands on: a small safetensors model
    (model/) and two datasets (data/patients.csv, data/events.jsonl)."""
    import shutil

    from ailedger.demos.samples import SAMPLE_DATA, SAMPLE_MODEL

    targets = {"model": out / "model", "data": out / "data"}
    for target in targets.values():
        if target.exists():
            raise ConflictError(f"{target} exists already", hint="pass another directory")
    shutil.copytree(SAMPLE_MODEL, targets["model"])
    targets["data"].mkdir(parents=True)
    files = [shutil.copy2(p, targets["data"]) for p in sorted(SAMPLE_DATA.iterdir())
             if p.suffix in (".csv", ".jsonl")]  # fmt: skip
    doc = {"model": str(targets["model"]), "data": [str(f) for f in files]}
    listed = ", ".join(escape(str(f)) for f in files)
    model = escape(str(targets["model"]))
    emit(doc, as_json, lambda: console.print(f"wrote {model}/ and {listed}"))


@demo_app.command("crop-insurance")
def crop_insurance(directory: DirOpt = None, rpc: RpcOpt = None, as_json: JsonOpt = False) -> None:
    """Crop insurance: 4 oracle processes (one lying) score drought, farms in drought are paid.

    Weather batches are fingerprinted, logged and anchored; every step runs on the embedded
    chain and each payout is traced to its batch root, model digest and signers."""
    from ailedger.demos.crop_insurance import run_crop_insurance

    _oracle_demo(run_crop_insurance, _crop_human, directory, rpc, as_json)


@demo_app.command("safety-bonus")
def safety_bonus(directory: DirOpt = None, rpc: RpcOpt = None, as_json: JsonOpt = False) -> None:
    """Safety bonus: 4 oracle processes (one lying) count incidents, safe weeks are paid.

    Weekly camera batches are fingerprinted, logged and anchored; every week settles on the
    embedded chain to the contractor (no incidents) or back to the payer."""
    from ailedger.demos.safety_bonus import run_safety_bonus

    _oracle_demo(run_safety_bonus, _bonus_human, directory, rpc, as_json)


def connect_service(url: str, mirrors: Path, log_key: str, check: SignatureCheck) -> RemoteLog:
    """A party's client of the log service at ``url`` (the demos layer cannot import the
    service package, its sibling: the CLI injects it)."""
    from ailedger.service.client import LogClient
    from ailedger.service.remote import RemoteLog

    return RemoteLog(LogClient(url), mirrors, log_key=log_key, check_signature=check)


@demo_app.command("consortium")
def consortium(directory: DirOpt = None, as_json: JsonOpt = False) -> None:
    """A cold-chain consortium over one log service: `ailedger serve`, two witnesses of other
    organisations (2 of 2 cosignatures) and a manufacturer, a shipper and a retailer with
    workspaces and keys of their own, on 127.0.0.1.

    Each party submits its sensor batches; the shipper's IsolationForest (fingerprint checked
    before loading) flags batches; the others acknowledge; the retailer proves batch 42 was
    flagged and its file is byte-identical with a receipt, offline, after the service stops;
    an auditor queries one shipment's trail. Needs the ml and server extras."""

    def show(step: Step) -> None:
        if not as_json:
            _show_step(step)

    def go(workdir: Path) -> None:
        from ailedger.demos.consortium import run_consortium

        result = run_consortium(workdir, connect_service, on_step=show)
        if as_json:
            emit(result.to_dict(), True)
        if not result.ok:
            failed = [s.title for s in result.steps if not s.ok]
            raise AiledgerError(f"demo steps did not behave as expected: {', '.join(failed)}")
        if not as_json:
            s = result.summary
            console.print(
                f"\n[green]demo passed[/green]: {len(result.steps)} steps, "
                f"{s['claims_checked']} claims read back and checked; batches "
                f"{', '.join(map(str, s['flagged']))} flagged; {s['log_entries']} log entries"
            )
            if directory is None:
                console.print("  (a temporary directory, now removed: pass --dir DIR to keep it)")

    _in_workdir(directory, go)


def _labeling_human(report: dict[str, Any]) -> None:
    console.print(
        f"[bold]labeling market[/bold]: task {report['task']} on chain {report['chain_id']}, "
        f"pool {report['pool'] / 10**18:g} CON, threshold {report['threshold_bps'] / 100:g}% "
        "gold accuracy"
    )
    for row in report["labelers"]:
        if row["outcome"] == "paid":
            console.print(
                f"  [green]paid[/green]    {row['name']}: {row['correct']}/{row['gold']} gold "
                f"correct, {row['reward'] / 10**18:.4f} CON"
            )
        else:
            console.print(
                f"  [red]slashed[/red] {row['name']}: {row['outcome']} (reason "
                f"{row['reason_code']}), fault {row['fault_id'][:18]}…, evidence "
                f"{row['evidence_hash'][:18]}…"
            )
    console.print(
        f"  settlement statement: log entry {report['settlement_log_index']}; labels "
        f"{report['labels_dataset']['ref']}: log entry {report['labels_dataset']['log_index']}; "
        f"{report['claims_checked']} claims read back, all hold"
    )


@demo_app.command("labeling")
def labeling(directory: DirOpt = None, rpc: RpcOpt = None, as_json: JsonOpt = False) -> None:
    """A labeling market on scikit-learn's digit images: labelers stake, commit and reveal;
    the gold set is revealed with proofs and scored on-chain; the inaccurate, late and copycat
    labelers are slashed, the others paid; the aggregated labels become a dataset whose records
    name their labelers (needs the ml extra: pip install 'ailedger[ml]')."""
    from ailedger.demos.labeling import run_labeling

    _oracle_demo(run_labeling, _labeling_human, directory, rpc, as_json)


def _imaging_human(report: dict[str, Any]) -> None:
    d, dec, s = report["dispute"], report["job_dec"], report["sampling"]
    console.print(
        f"[bold]imaging dispute[/bold]: {report['calls']} studies per job on chain "
        f"{report['chain_id']}, InferenceMarket {report['market']}"
    )
    console.print(
        f"  study {d['study']} (flagged, finding {d['output']['finding']}) came from "
        f"{d['model']}: salted digest {d['salted_digest'][:18]}…, call {d['counter']} of job "
        f"{d['job'][:12]}…, epoch {d['epoch']} root on-chain, {len(d['steps'])} links checked"
    )
    slash = dec.get("slash", {})
    console.print(
        f"  [red]swap caught[/red]: {dec['wrong_outputs']} of {report['calls']} outputs were "
        f"not the registered model's; epoch {dec.get('failed_epoch')}: "
        f"{dec['sample']['passed']}/{dec['sample']['total']} sampled calls reproduced; provider "
        f"slashed {_wei(slash.get('slashed', 0)).replace('ETH', 'CON')} (call "
        f"{slash.get('counter')}), hospital refunded {_wei(dec['refund']).replace('ETH', 'CON')}"
    )
    console.print(
        f"  sampling: k={s['k']} per epoch catches a {s['swap_rate']:.0%} swap with probability "
        f"{s['catch_probability_per_epoch']:.1%}; {s['line']}"
    )
    console.print(
        f"  {report['claims_checked']} claims read back from the chain and the log, all hold"
    )


@demo_app.command("imaging-dispute")
def imaging_dispute(
    directory: DirOpt = None,
    rpc: RpcOpt = None,
    calls: Annotated[
        int, typer.Option("--calls", min=100, max=100_000, help="Studies sent per job.")
    ] = 1_000,
    as_json: JsonOpt = False,
) -> None:
    """Pay per inference, disputed: a hospital sends studies (scikit-learn's digit images) to
    a provider's registered classifier (`market serve`, a child process); weeks later it
    proves which model version flagged one study from its salted digest, the signed receipt,
    the epoch root on-chain and the model's lineage; a provider that swaps in a cheaper model
    for 5% of the calls is caught by the sampled verification and slashed (needs the ml and
    server extras)."""
    from ailedger.demos.imaging import run_imaging_dispute

    def run(workdir: Path, rpc: str | None, on_step: Callable[[str], None]) -> dict[str, Any]:
        return run_imaging_dispute(workdir, rpc, calls=calls, on_step=on_step)

    _oracle_demo(run, _imaging_human, directory, rpc, as_json)


def _federated_human(report: dict[str, Any]) -> None:
    console.print(
        f"[bold]federated learning[/bold]: task {report['task']}, {len(report['rounds'])} "
        f"rounds, held-out set of {report['held_out']['size']} records (root "
        f"{report['held_out']['root'][:16]}…, log entry {report['held_out']['log_index']})"
    )
    console.print(
        "  accuracy per round: " + " ".join(f"{r['accuracy']:.3f}" for r in report["rounds"])
    )
    for row in report["clients"]:
        mark = "[red]penalised[/red]" if row["penalised"] else "[green]ok[/green]       "
        console.print(
            f"  {mark} {row['name']:<13} contribution {row['contribution']:+.4f}, "
            f"harmful rounds {row['harmful_rounds']}, earned {_wei(row['earned_wei'])}, "
            f"stake lost {row['stake_lost'] / 10**18:g} CON"
        )
    ch = report["challenge"]
    console.print(
        f"  round {ch['round']}: the aggregator's record paying {ch['colluder']} "
        f"{_wei(ch['inflated_payout_wei'])} was challenged by {ch['challenger']} and corrected; "
        f"the aggregator's bond lost: {ch['bond_slashed'] / 10**18:g} CON"
    )
    model = report["model"]
    console.print(
        f"  final model {model['ref']} sha256:{model['digest'][:16]}… (log entry "
        f"{model['log_index']}); receipt {escape(model['receipt'])}; gate with max_epsilon: "
        f"{', '.join(model['gate_unmet']) or 'passed'}; {report['claims_checked']} claims read "
        "back, all hold"
    )


@demo_app.command("federated")
def federated(directory: DirOpt = None, rpc: RpcOpt = None, as_json: JsonOpt = False) -> None:
    """Federated learning on Flower that records, scores and pays each update: 8 clients (5
    honest, a free rider, a poisoner, a noise spammer) on non-IID digits, 10 rounds in a
    Flower simulation; every update signed, logged and scored on a held-out set anchored
    before round 1; the final model stated with its lineage and a receipt verified offline
    (needs the fl extra: pip install 'ailedger[fl]')."""
    try:
        from ailedger.demos.federated import run_federated
    except ImportError as exc:
        raise InvalidInput(
            f"the federated demo needs the fl extra ({exc.name} is missing)",
            hint="pip install 'ailedger[fl]'",
        ) from None

    _oracle_demo(run_federated, _federated_human, directory, rpc, as_json)
