"""Policy files (parsing, line numbers, round trip) and the gate over signed statements."""

from __future__ import annotations

import dataclasses
import json
import operator
import string
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.attest.predicates import ApprovalPredicate, EvaluationPredicate, Predicate
from ailedger.attest.statements import (
    Statement,
    make_statement,
    sign_statement,
    subject_from_digest,
    verify_statement,
)
from ailedger.errors import GateFailed, InvalidInput, NotFound, PolicyError
from ailedger.identity.keys import P256Signer, Secp256k1Signer, Signer
from ailedger.registry.policy import (
    ApprovalRule,
    ArtifactCheck,
    AuditRule,
    EvaluationRule,
    Evidence,
    Excluded,
    GateResult,
    ModelRef,
    Policy,
    Section,
    Threshold,
    dumps_policy,
    evaluate_policy,
    format_duration,
    load_policy,
    parse_duration,
    parse_policy,
    parse_threshold,
    policy_requirements_for_chain,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
MODEL = ModelRef("churn", "1.4.0", DIGEST)

# --- thresholds ---------------------------------------------------------------------------

metrics = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:/-]{0,20}", fullmatch=True)
comparators = st.sampled_from([">=", ">", "<=", "<", "=="])
finite = st.floats(allow_nan=False, allow_infinity=False)


@given(metrics, comparators, finite, st.sampled_from(["", " ", "  ", "\t"]))
def test_threshold_round_trip(metric: str, comp: str, value: float, space: str) -> None:
    parsed = parse_threshold(f"{metric}{space}{comp}{space}{value!r}")
    assert parsed == Threshold(metric, comp, value)  # type: ignore[arg-type]
    assert parse_threshold(str(parsed)) == parsed


@given(comparators, st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_threshold_holds_like_the_operator(comp: str, threshold: int, measured: int) -> None:
    ops = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
    ops["=="] = operator.eq
    expected = ops[comp](measured, threshold)
    assert parse_threshold(f"m {comp} {threshold}").holds(float(measured)) is expected


def test_threshold_rejects_nan_measurement() -> None:
    assert not parse_threshold("loss <= 1").holds(float("nan"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "accuracy",
        "accuracy >=",
        ">= 0.9",
        "accuracy => 0.9",
        "accuracy = 0.9",
        "accuracy != 0.9",
        "accuracy >> 0.9",
        "accuracy >= nan",
        "accuracy >= inf",
        "accuracy >= 1e999",
        "accuracy >= 0x10",
        "accuracy >= 0.9 and 1",
        "accuracy >= 0.9 # comment",
        "__import__('os').system('x') >= 1",
        "9lives >= 1",
        "acc uracy >= 1",
    ],
)
def test_threshold_rejects(text: str) -> None:
    with pytest.raises(InvalidInput, match="threshold"):
        parse_threshold(text)


@given(st.text(alphabet=string.printable, max_size=30))
def test_threshold_parses_or_raises_invalid_input(text: str) -> None:
    try:
        parsed = parse_threshold(text)
    except InvalidInput:
        return
    assert parse_threshold(str(parsed)) == parsed


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(days=14)),
        ("1d12h", timedelta(hours=36)),
        ("1h30m", timedelta(minutes=90)),
        (" 7d ", timedelta(days=7)),
    ],
)
def test_duration_examples(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@given(st.integers(1, 100 * 365 * 86400))
def test_duration_round_trip(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    text = format_duration(value)
    assert parse_duration(text) == value
    assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(
    "text", ["", "30", "d", "0d", "0h0m", "-1d", "1.5h", "1h1d", "1d1d", "30 d", "1y", "99999w"]
)
def test_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidInput, match="duration"):
        parse_duration(text)


@given(st.text(alphabet="0123456789wdhms .-", max_size=12))
def test_duration_parses_or_raises_invalid_input(text: str) -> None:
    try:
        value = parse_duration(text)
    except InvalidInput:
        return
    assert value > timedelta(0)


# --- policy files -------------------------------------------------------------------------


def test_example_policy_loads() -> None:
    policy = load_policy(EXAMPLE)
    prod = policy.section_for("prod")
    assert set(prod.approvals) == {"qa", "security"}
    assert prod.approvals["qa"].count == 2  # [env.prod] replaces [all]
    assert policy.section_for("staging").approvals["qa"].count == 1
    assert policy.section_for("staging").max_age == timedelta(days=90)
    assert prod.max_age == timedelta(days=30)
    assert prod.evaluations["accuracy"].thresholds == (Threshold("accuracy", ">=", 0.9),)
    assert set(prod.audits) == {"bias-audit"}
    assert prod.artifact_must_match is True


def test_chain_requirement_from_example() -> None:
    policy = load_policy(EXAMPLE)
    req = policy_requirements_for_chain(policy, "prod")
    assert req.roles == (("qa", 2), ("security", 1))
    assert req.min_organisations == 2
    assert policy_requirements_for_chain(policy, "staging").roles == (("qa", 1),)
    assert policy_requirements_for_chain(policy, "staging").min_organisations == 0
    assert json.loads(json.dumps(req.to_dict()))["roles"][0] == {"role": "qa", "count": 2}
    with pytest.raises(PolicyError, match="no environment 'qa-lab'"):
        policy_requirements_for_chain(policy, "qa-lab")


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_policy(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"version = 1\n\xff\n")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(bad)


BAD_POLICIES = [
    # (text, line, message fragment)
    ("version = 1\nvresion = 1\n", 2, "unknown key 'vresion'"),
    ("[all]\nmax_age = '30d'\nmin_organizations = 2\n", 3, "did you mean 'min_organisations'"),
    ("[all]\n\n[all.evaluations]\naccuracy = 'accuracy => 0.9'\n", 4, "not a threshold"),
    ("[all]\nmax_age = '30 days'\n", 2, "not a duration"),
    ("[env.prod.approvals]\nqa = 0\n", 2, "between 1 and 65535"),
    ("[env.prod.approvals]\nQA = 1\n", 2, "lower-case role"),
    ("[env.prod]\napprovals.qa = { count = 1, signer = ['x'] }\n", 2, "unknown key 'signer'"),
    ("[env.prod]\nmin_organisations = true\n", 2, "must be an integer"),
    ("[all]\nartifact_must_match = 'yes'\n", 2, "true/false"),
    ("[all]\nallowed_signers = ['0x1234']\n", 2, "neither an address"),
    ("[all]\nallowed_signers = []\n", 2, "is empty"),
    ("[all.audits.bias-audit]\nroles = 'auditor'\n", 2, "list of strings"),
    ("[all.evaluations.acc]\nmax_age = '1d'\n", 1, "needs a threshold"),
    ("[all.evaluations]\nacc = []\n", 2, "a string or a list"),
    ("version = 2\n", 1, "unsupported policy version"),
    ('[all]\nmax_age = "30d"\n[all]\n', 3, "not valid TOML"),
    ("[all]\nmax_age = \n", 2, "not valid TOML"),
    ("env = 3\n", 1, "env must be a table"),
    ('[all]\nnote = """\nfake = 1\n"""\n', 2, "unknown key 'note'"),
    ('x = """\n[all]\n"""\n', 1, "unknown key 'x'"),
    ("# c\n[env.prod.approvals]\n" + "".join(f"r{i} = 1\n" for i in range(9)), 2, "names 9 roles"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), BAD_POLICIES)
def test_policy_errors_name_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.toml")
    assert str(info.value).startswith(f"p.toml:{line}: "), str(info.value)
    assert fragment in str(info.value)
    assert info.value.exit_code == 3


def test_policy_error_line_in_a_real_file(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("min_organisations = 2", "min_orgs = 2")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("min_orgs"))
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=rf"^{path}:{line}: unknown key 'min_orgs'"):
        load_policy(path)


def test_merged_roles_over_the_chain_limit() -> None:
    text = "[all.approvals]\n" + "".join(f"a{i} = 1\n" for i in range(5))
    text += "[env.prod.approvals]\n" + "".join(f"b{i} = 1\n" for i in range(4))
    with pytest.raises(PolicyError, match=r"p.toml:7: env.prod requires 9 roles"):
        parse_policy(text, "p.toml")


keyids = st.one_of(
    st.from_regex(r"0x[0-9a-f]{40}", fullmatch=True), st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
)
names = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
ages = st.none() | st.integers(1, 10**6).map(lambda s: timedelta(seconds=s))
signer_sets = st.none() | st.frozensets(keyids, min_size=1, max_size=2)
role_sets = st.none() | st.frozensets(names, min_size=1, max_size=2)


@st.composite
def sections(draw: st.DrawFn) -> Section:
    evals = draw(st.lists(names, max_size=2, unique=True))
    audits = draw(st.lists(names, max_size=2, unique=True))
    roles = draw(st.lists(names, max_size=3, unique=True))
    return Section(
        max_age=draw(ages),
        artifact_must_match=draw(st.none() | st.booleans()),
        allowed_signers=draw(signer_sets),
        min_organisations=draw(st.none() | st.integers(1, 5)),
        evaluations={
            n: EvaluationRule(
                n,
                tuple(
                    draw(st.lists(st.builds(Threshold, metrics, comparators, finite), min_size=1))
                ),
                draw(ages),
                draw(signer_sets),
                draw(role_sets),
            )
            for n in evals
        },
        audits={n: AuditRule(n, draw(ages), draw(signer_sets), draw(role_sets)) for n in audits},
        approvals={
            r: ApprovalRule(r, draw(st.integers(1, 9)), draw(ages), draw(signer_sets))
            for r in roles
        },
    )


@settings(max_examples=examples(50))
@given(sections(), st.dictionaries(names, sections(), max_size=2))
def test_policy_round_trip(base: Section, envs: dict[str, Section]) -> None:
    policy = Policy(base, envs)
    assert parse_policy(dumps_policy(policy)) == policy


@settings(max_examples=examples(50))
@given(sections(), st.dictionaries(names, sections(), max_size=2), st.data())
def test_unknown_key_is_reported_on_its_line(
    base: Section, envs: dict[str, Section], data: st.DataObject
) -> None:
    lines = dumps_policy(Policy(base, envs)).splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("[")]
    at = data.draw(st.sampled_from([-1, *headers]))
    lines.insert(at + 1, "bogus_key = 1  # not a policy key")
    with pytest.raises(PolicyError, match=rf"^p.toml:{at + 2}: unknown key 'bogus_key'"):
        parse_policy("\n".join(lines), "p.toml")


def test_policy_without_envs_applies_everywhere() -> None:
    policy = parse_policy("[all.approvals]\nqa = 1\n")
    assert policy_requirements_for_chain(policy, "anything").roles == (("qa", 1),)


# --- the gate -----------------------------------------------------------------------------


class Org:
    """Keys and their roles, standing in for the Membership contract's answers."""

    def __init__(self) -> None:
        self.members: dict[str, tuple[set[str], str]] = {}

    def key(self, org: str, *roles: str, p256: bool = False) -> Signer:
        signer: Signer = P256Signer.generate() if p256 else Secp256k1Signer.generate()
        self.members[signer.keyid] = (set(roles), org)
        return signer

    def role_of(self, keyid: str) -> tuple[Collection[str], str | None] | None:
        return self.members.get(keyid)


def evidence(
    ref: str,
    predicate: Predicate,
    signers: Sequence[Signer],
    age: timedelta = timedelta(hours=1),
    digest: str = DIGEST,
) -> Evidence:
    statement = make_statement([subject_from_digest(digest, "churn")], predicate)
    envelope = sign_statement(statement, signers)
    verified = verify_statement(envelope, [s.public_key for s in signers])
    return Evidence.from_verified(verified, ref=ref, logged_at=NOW - age)


Comparator = Literal[">=", ">", "<=", "<", "=="]


def evaluation(
    metric: str, value: float, comparator: Comparator = ">=", threshold: float = 0.0
) -> Predicate:
    return EvaluationPredicate(
        metric=metric, value=value, comparator=comparator, threshold=threshold
    )


def approval(role: str, decision: str = "approve") -> Predicate:
    return ApprovalPredicate(role=role, decision=decision)  # type: ignore[arg-type]


POLICY = """
[all]
max_age = "30d"
artifact_must_match = true
[all.evaluations]
accuracy = "accuracy >= 0.9"
[all.audits.bias-audit]
roles = ["auditor"]
[env.prod]
min_organisations = 2
[env.prod.approvals]
qa = 2
security = 1
"""


@pytest.fixture
def org() -> Org:
    return Org()


def passing(org: Org) -> list[Evidence]:
    oracle = org.key("acme", "oracle")
    auditor = org.key("auditco", "auditor", p256=True)
    qa1, qa2 = org.key("acme", "qa"), org.key("bank", "qa")
    sec = org.key("bank", "security")
    return [
        evidence("log:1", evaluation("accuracy", 0.93), [oracle]),
        evidence("log:2", evaluation("bias-audit", 0.01, "<=", 0.05), [auditor]),
        evidence("log:3", approval("qa"), [qa1]),
        evidence("log:4", approval("qa"), [qa2]),
        evidence("log:5", approval("security"), [sec]),
    ]


def gate(
    org: Org,
    statements: list[Evidence],
    policy: str = POLICY,
    *,
    env: str = "prod",
    now: datetime = NOW,
    artifact_check: ArtifactCheck = True,
) -> GateResult:
    return evaluate_policy(
        parse_policy(policy),
        env,
        model_ref=MODEL,
        statements=statements,
        role_of=org.role_of,
        now=now,
        artifact_check=artifact_check,
    )


def codes(result: GateResult) -> list[str]:
    return [u.code for u in result.unmet]


def test_gate_passes_and_says_what_satisfied_each(org: Org) -> None:
    result = gate(org, passing(org))
    assert result.passed, result.lines()
    by_req = {m.requirement: m.satisfied_by for m in result.met}
    assert by_req["evaluation:accuracy"] == ("log:1",)
    assert by_req["audit:bias-audit"] == ("log:2",)
    assert by_req["approvals:qa"] == ("log:3", "log:4")
    assert by_req["approvals:security"] == ("log:5",)
    assert set(by_req["organisations"]) == {"log:3", "log:4", "log:5"}
    assert by_req["artifact"] == ()
    result.raise_for_unmet()
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["passed"] is True
    assert doc["unmet"] == []


def test_gate_lists_every_unmet_requirement(org: Org) -> None:
    result = gate(org, [], artifact_check=False)
    assert codes(result) == [
        "evaluation-missing",
        "audit-missing",
        "approvals-missing",
        "approvals-missing",
        "too-few-organisations",
        "artifact-mismatch",
    ]
    with pytest.raises(GateFailed, match="6 unmet") as info:
        result.raise_for_unmet()
    assert info.value.exit_code == 1
    assert all(line.startswith("FAIL [") for line in result.lines())


def test_evaluation_below_threshold(org: Org) -> None:
    statements = passing(org)
    oracle = org.key("acme", "oracle")
    # the latest result counts, even when an older one passed
    statements.append(evidence("log:9", evaluation("accuracy", 0.85), [oracle], timedelta(0)))
    result = gate(org, statements)
    assert codes(result) == ["evaluation-failed"]
    assert "accuracy = 0.85 does not meet accuracy >= 0.9" in result.unmet[0].message


def test_evaluation_metric_missing(org: Org) -> None:
    policy = POLICY.replace(
        'accuracy = "accuracy >= 0.9"', 'accuracy = ["accuracy >= 0.9", "f1 > 0.5"]'
    )
    result = gate(org, passing(org), policy)
    assert codes(result) == ["evaluation-metric-missing"]
    assert "reports no f1" in result.unmet[0].message


def test_expired_evaluation_and_audit(org: Org) -> None:
    statements = passing(org)
    old = [
        evidence(
            "log:1", evaluation("accuracy", 0.95), [org.key("acme", "oracle")], timedelta(days=31)
        ),
        evidence(
            "log:2",
            evaluation("bias-audit", 0.0, "<=", 0.05),
            [org.key("x", "auditor")],
            timedelta(days=40),
        ),
    ]
    result = gate(org, old + statements[2:])
    assert codes(result) == ["evaluation-expired", "audit-expired"]
    assert [e.reason for e in result.unmet[0].excluded] == ["expired"]


def test_audit_failed_and_wrong_role(org: Org) -> None:
    statements = passing(org)
    statements[1] = evidence(
        "log:2", evaluation("bias-audit", 0.2, "<=", 0.05), [org.key("auditco", "auditor")]
    )
    assert codes(gate(org, statements)) == ["audit-failed"]
    statements[1] = evidence(
        "log:2", evaluation("bias-audit", 0.0, "<=", 0.05), [org.key("acme", "qa")]
    )
    result = gate(org, statements)
    assert codes(result) == ["audit-missing"]
    (excluded,) = result.unmet[0].excluded
    assert excluded.reason == "wrong-role"
    assert "does not hold the role auditor (holds: qa)" in excluded.message
    # the text output says why, not only --json
    lines = result.lines()
    at = lines.index(next(line for line in lines if line.startswith("FAIL [audit-missing]")))
    assert lines[at + 1].startswith("       did not count: log:2")
    assert lines[at + 1].endswith("[wrong-role]")
    assert "does not hold the role auditor (holds: qa)" in lines[at + 1]


def test_text_output_lists_ignored_statements_with_reasons(org: Org) -> None:
    statements = passing(org)
    result = gate(org, statements)
    extra = tuple(
        Excluded(f"log:{90 + i}", "other-subject", f"log:{90 + i} is about x") for i in range(12)
    )
    shown = dataclasses.replace(result, ignored=extra).lines()
    assert "ignored 12 statement(s):" in shown
    assert "       log:90 is about x [other-subject]" in shown
    assert shown[-1] == "       ... and 2 more (--json lists all)"
    assert not any(line.startswith("ignored") for line in result.lines())


def test_expired_approval(org: Org) -> None:
    statements = passing(org)
    statements[4] = evidence(
        "log:5", approval("security"), [org.key("bank", "security")], timedelta(days=30, seconds=1)
    )
    result = gate(org, statements)
    assert codes(result) == ["approvals-missing"]
    assert result.unmet[0].requirement == "approvals:security"
    assert "0 of 1 approvals; 1 did not count" in result.unmet[0].message
    assert result.unmet[0].excluded[0].reason == "expired"


def test_per_role_max_age_overrides_section(org: Org) -> None:
    policy = POLICY.replace("security = 1", 'security = { count = 1, max_age = "1h" }')
    statements = passing(org)
    assert gate(org, statements, policy).passed  # logged exactly one hour ago
    statements[4] = evidence(
        "log:5", approval("security"), [org.key("bank", "security")], timedelta(hours=2)
    )
    assert codes(gate(org, statements, policy)) == ["approvals-missing"]


def test_approval_with_the_wrong_role_or_no_membership(org: Org) -> None:
    statements = passing(org)
    trainer = org.key("bank", "trainer")
    outsider = Secp256k1Signer.generate()
    statements[3] = evidence("log:4", approval("qa"), [trainer])
    statements.append(evidence("log:6", approval("qa"), [outsider]))
    result = gate(org, statements)
    assert codes(result) == ["approvals-missing"]
    reasons = sorted(e.reason for e in result.unmet[0].excluded)
    assert reasons == ["not-a-member", "wrong-role"]


def test_signer_not_allowed(org: Org) -> None:
    statements = passing(org)
    qa_keys = [s for s in org.members if "qa" in org.members[s][0]]
    allowed = ", ".join(f'"{k.lower()}"' for k in qa_keys[:1])
    policy = POLICY.replace("qa = 2", f"qa = {{ count = 2, signers = [{allowed}] }}")
    result = gate(org, statements, policy)
    assert codes(result) == ["approvals-missing"]
    (excluded,) = result.unmet[0].excluded
    assert excluded.reason == "signer-not-allowed"
    assert excluded.ref == "log:4"


def test_global_allowed_signers_apply_to_evaluations(org: Org) -> None:
    statements = passing(org)
    stranger = Secp256k1Signer.generate()
    policy = POLICY.replace("[all]\n", f'[all]\nallowed_signers = ["{stranger.keyid}"]\n', 1)
    result = gate(org, statements, policy)
    assert "evaluation-missing" in codes(result)
    assert result.unmet[0].excluded[0].reason == "signer-not-allowed"


def test_rejection_blocks_until_the_approver_approves(org: Org) -> None:
    statements = passing(org)
    qa3 = org.key("cust", "qa")
    statements.append(evidence("log:7", approval("qa", "reject"), [qa3], timedelta(minutes=30)))
    result = gate(org, statements)
    assert codes(result) == ["approval-rejected"]
    assert "rejected by" in result.unmet[0].message
    assert qa3.keyid.lower() in result.unmet[0].message
    statements.append(evidence("log:8", approval("qa"), [qa3], timedelta(minutes=10)))
    result = gate(org, statements)
    assert result.passed, result.lines()
    assert {"log:3", "log:4", "log:8"} == set(
        next(m for m in result.met if m.requirement == "approvals:qa").satisfied_by
    )


def test_approval_withdrawn_by_a_later_reject(org: Org) -> None:
    statements = passing(org)
    qa3 = org.key("cust", "qa")
    statements.append(evidence("log:7", approval("qa"), [qa3], timedelta(minutes=30)))
    assert gate(org, statements).passed
    statements.append(evidence("log:8", approval("qa", "reject"), [qa3], timedelta(minutes=10)))
    result = gate(org, statements)
    assert codes(result) == ["approval-rejected"]
    assert "log:8" in result.unmet[0].message


def test_distinct_organisations(org: Org) -> None:
    statements = passing(org)
    # both qa approvers and the security approver from one organisation: 1 < 2
    acme_qa = org.key("acme", "qa")
    acme_sec = org.key("acme", "security")
    statements[3] = evidence("log:4", approval("qa"), [acme_qa])
    statements[4] = evidence("log:5", approval("security"), [acme_sec])
    result = gate(org, statements)
    assert codes(result) == ["too-few-organisations"]
    assert "1 organisation(s); 2 distinct required" in result.unmet[0].message
    # an approval for a role the policy does not require still counts towards organisations,
    # as on-chain (ModelRegistry counts the organisations of all approvers)
    statements.append(evidence("log:6", approval("trainer"), [org.key("bank", "trainer")]))
    assert gate(org, statements).passed


def test_role_names_compare_lower_case(org: Org) -> None:
    statements = passing(org)
    sec = org.key("bank", "Security")
    statements[4] = evidence("log:5", approval("SECURITY"), [sec])
    assert gate(org, statements).passed


def test_one_approver_counts_once_per_role(org: Org) -> None:
    statements = passing(org)
    qa1 = Secp256k1Signer.generate()
    org.members[qa1.keyid] = ({"qa"}, "acme")
    statements[2] = evidence("log:3", approval("qa"), [qa1])
    statements[3] = evidence("log:4", approval("qa"), [qa1], timedelta(minutes=5))
    result = gate(org, statements)
    assert codes(result) == ["approvals-missing"]


def test_cosigned_approval_counts_each_role_holder(org: Org) -> None:
    statements = passing(org)
    a, b = org.key("acme", "qa"), org.key("bank", "qa")
    statements[2:4] = [evidence("log:3", approval("qa"), [a, b])]
    result = gate(org, statements)
    assert result.passed, result.lines()


def test_screened_statements(org: Org) -> None:
    statements = passing(org)
    oracle = org.key("acme", "oracle")
    future = evidence("log:9", evaluation("accuracy", 0.1), [oracle], timedelta(hours=-1))
    other = evidence("log:10", evaluation("accuracy", 0.1), [oracle], timedelta(0), OTHER)
    result = gate(org, [*statements, future, other])
    assert result.passed, result.lines()
    assert [(e.ref, e.reason) for e in result.ignored] == [
        ("log:9", "logged-after-gate"),
        ("log:10", "other-subject"),
    ]
    # the same statements, gated at a time before they were logged, do not count
    early = gate(org, statements, now=NOW - timedelta(days=1))
    assert "evaluation-missing" in codes(early)


def test_invalid_predicate_is_screened_out(org: Org) -> None:
    statements = passing(org)
    broken = Statement.from_dict(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "churn", "digest": {"sha256": "ab" * 32}}],
            "predicateType": EvaluationPredicate.PREDICATE_TYPE,
            "predicate": {"metric": "accuracy", "value": 0.99},
        }
    )
    oracle = org.key("acme", "oracle")
    bad = Evidence("log:12", broken, (oracle.keyid,), NOW)
    result = gate(org, [*statements, bad])
    assert result.passed
    assert [(e.ref, e.reason) for e in result.ignored] == [("log:12", "invalid-predicate")]


def test_p256_key_ids_in_allow_lists(org: Org) -> None:
    statements = passing(org)
    auditor = next(k for k, (roles, _) in org.members.items() if roles == {"auditor"})
    assert len(auditor) == 64
    policy = POLICY.replace('roles = ["auditor"]', f'roles = ["auditor"]\nsigners = ["{auditor}"]')
    assert gate(org, statements, policy).passed
    other = "0" * 64
    policy = POLICY.replace('roles = ["auditor"]', f'signers = ["{other}"]')
    result = gate(org, statements, policy)
    assert codes(result) == ["audit-missing"]
    assert result.unmet[0].excluded[0].reason == "signer-not-allowed"


def test_artifact_checks(org: Org) -> None:
    statements = passing(org)
    calls: list[int] = []

    def rehash() -> bool:
        calls.append(1)
        return True

    assert gate(org, statements, artifact_check=rehash).passed
    assert calls == [1]
    assert codes(gate(org, statements, artifact_check=None)) == ["artifact-unchecked"]

    def missing() -> bool:
        raise NotFound("no such file: model.safetensors")

    result = gate(org, statements, artifact_check=missing)
    assert codes(result) == ["artifact-mismatch"]
    assert "no such file" in result.unmet[0].message
    relaxed = POLICY.replace("artifact_must_match = true", "artifact_must_match = false")
    assert gate(org, statements, relaxed, artifact_check=rehash).passed
    assert calls == [1]  # not re-hashed when the policy does not ask


def test_unknown_environment(org: Org) -> None:
    result = gate(org, passing(org), env="prdo")
    assert codes(result)[0] == "unknown-environment"
    assert "names no environment 'prdo'" in result.unmet[0].message


def test_example_policy_gate(org: Org) -> None:
    statements = passing(org)
    f1 = evidence("log:11", evaluation("f1", 0.9), [org.key("bank", "qa", "oracle")])
    result = evaluate_policy(
        load_policy(EXAMPLE),
        "staging",
        model_ref=MODEL,
        statements=[*statements, f1],
        role_of=org.role_of,
        now=NOW,
        artifact_check=True,
    )
    assert result.passed, result.lines()


def test_naive_times_are_rejected(org: Org) -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        gate(org, [], now=NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    "policy",
    [
        "",
        "# a policy cut down to its first comment line\n",
        "version = 1\n",
        "version = 1\n[all]\nmax_age = '30d'\n",
        "version = 1\n[all]\nallowed_signers = ['0x" + "11" * 20 + "']\n",
        "version = 1\n[env.staging.evaluations.accuracy]\nthreshold = 'accuracy>=0.9'\n"
        "[env.prod]\nmax_age = '1d'\n",
    ],
)
def test_a_policy_that_requires_nothing_passes_nothing(org: Org, policy: str) -> None:
    """Issue 11 item 1: an empty or truncated policy, or one whose requirements are all for
    other environments, printed PASS; it now fails with ``policy-requires-nothing``."""
    result = gate(org, passing(org), policy)
    assert not result.passed
    assert codes(result)[0] == "policy-requires-nothing"
    assert "requires nothing for 'prod'" in result.unmet[0].message


def test_the_opt_out_is_explicit_and_strict(org: Org) -> None:
    allowed = gate(org, [], "version = 1\nunsafe_allow_no_requirements = true\n")
    assert allowed.passed
    assert parse_policy("version = 1\nunsafe_allow_no_requirements = true\n").to_dict() == {
        "version": 1,
        "unsafe_allow_no_requirements": True,
    }
    with pytest.raises(PolicyError, match="must be true or false"):
        parse_policy("version = 1\nunsafe_allow_no_requirements = 'yes'\n")


def test_an_unknown_environment_is_reported_before_emptiness(org: Org) -> None:
    policy = "version = 1\n[env.staging.approvals.qa]\ncount = 1\n"
    assert codes(gate(org, passing(org), policy))[0] == "unknown-environment"
