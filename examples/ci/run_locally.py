"""Run the jobs of github-actions.yml on this machine, the way a GitHub runner would.

    AILEDGER_KEYSTORE_JSON="$(cat key.json)" AILEDGER_PASSWORD=... \
        python examples/ci/run_locally.py [--env LABEL_NOISE=0.9] [--work DIR]

Each job runs in a fresh directory holding a copy of the repository's ``examples/``
(``actions/checkout``), in ``needs`` order; a job whose needs did not all succeed is
skipped, as on GitHub. ``run:`` steps run with ``bash --noprofile --norc -eo pipefail``;
``upload-artifact`` / ``download-artifact`` copy files between jobs with GitHub's rules
(the paths' common ancestor is the artifact root; ``!`` excludes). ``ACT=true`` is set, so
steps marked ``if: ${{ !env.ACT }}`` (installing Python and ailedger) are skipped: the
``ailedger`` on PATH is used. Secrets come from environment variables of the same name.
Only the parts of the workflow syntax that the example uses are supported; anything
else is an error rather than silently ignored.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
WORKFLOW = HERE / "github-actions.yml"
REPO = HERE.parents[1]
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepResult:
    name: str
    status: str  # success, failure, skipped
    output: str = ""


@dataclass
class JobResult:
    name: str
    status: str  # success, failure, skipped
    steps: list[StepResult] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(s.output for s in self.steps)


def load_workflow(path: Path = WORKFLOW) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict):
        raise ValueError(f"{path}: not a workflow (no jobs)")
    return doc


def needs(job: Mapping[str, Any]) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


def job_order(jobs: Mapping[str, Any]) -> list[str]:
    """Jobs in an order that respects ``needs`` (an error on cycles or unknown jobs)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting or name not in jobs:
            raise ValueError(f"job graph: cycle or unknown job at {name!r}")
        visiting.add(name)
        for dep in needs(jobs[name]):
            visit(dep)
        order.append(name)

    for name in jobs:
        visit(name)
    return order


class Runner:
    def __init__(
        self,
        workflow: dict[str, Any],
        work: Path,
        *,
        secrets: Mapping[str, str],
        env: Mapping[str, str] | None = None,
        run_number: int = 1,
        repo: Path = REPO,
    ) -> None:
        self.workflow = workflow
        self.work = work
        self.secrets = dict(secrets)
        self.overrides = dict(env or {})
        self.context = {"github.run_number": str(run_number), "github.sha": "0" * 40}
        self.repo = repo
        self.artifacts = work / "_artifacts"

    def expand(self, text: str, env: Mapping[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("secrets."):
                return self.secrets.get(expr[8:], "")
            if expr.startswith("env."):
                return env.get(expr[4:], "")
            if expr in self.context:
                return self.context[expr]
            raise ValueError(f"unsupported expression ${{{{ {expr} }}}}")

        return _EXPR.sub(one, text)

    def condition(self, text: object, env: Mapping[str, str]) -> bool:
        if text is None:
            return True
        expr = str(text).strip()
        if m := _EXPR.fullmatch(expr):
            expr = m.group(1)
        if expr == "!env.ACT":
            return not env.get("ACT")
        if expr in ("success()", "true"):
            return True
        raise ValueError(f"unsupported condition {text!r}")

    def env_block(self, block: Mapping[str, Any] | None, env: dict[str, str]) -> dict[str, str]:
        out = dict(env)
        for key, value in (block or {}).items():
            out[str(key)] = self.overrides.get(key, self.expand(str(value), out))
        return out

    def run(self) -> dict[str, JobResult]:
        jobs = self.workflow["jobs"]
        base = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "CI": "true",
            "ACT": "true",
            "GITHUB_SHA": self.context["github.sha"],
        }
        wf_env = self.env_block(self.workflow.get("env"), base)
        results: dict[str, JobResult] = {}
        for name in job_order(jobs):
            if any(results[d].status != "success" for d in needs(jobs[name])):
                results[name] = JobResult(name, "skipped")
                continue
            results[name] = self.run_job(name, jobs[name], wf_env)
        return results

    def run_job(self, name: str, job: Mapping[str, Any], wf_env: dict[str, str]) -> JobResult:
        root = self.work / name
        temp = self.work / f"{name}.tmp"
        root.mkdir(parents=True)
        temp.mkdir()
        env = self.env_block(job.get("env"), wf_env)
        env.update(GITHUB_WORKSPACE=str(root), RUNNER_TEMP=str(temp))
        result = JobResult(name, "success")
        for i, step in enumerate(job.get("steps", [])):
            label = step.get("name") or step.get("uses") or f"step {i}"
            step_env = self.env_block(step.get("env"), env)
            if result.status == "failure" or not self.condition(step.get("if"), step_env):
                result.steps.append(StepResult(label, "skipped"))
                continue
            ok, output = self.step(step, root, step_env)
            result.steps.append(StepResult(label, "success" if ok else "failure", output))
            if not ok and not step.get("continue-on-error", False):
                result.status = "failure"
        return result

    def step(self, step: Mapping[str, Any], root: Path, env: dict[str, str]) -> tuple[bool, str]:
        if "run" in step:
            script = self.expand(str(step["run"]), env)
            proc = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                cwd=root,
                env=env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            return proc.returncode == 0, proc.stdout + proc.stderr
        uses = str(step.get("uses", ""))
        with_ = {k: self.expand(str(v), env) for k, v in (step.get("with") or {}).items()}
        action = uses.split("@")[0]
        if action == "actions/checkout":
            shutil.copytree(self.repo / "examples", root / "examples")
            return True, "checked out examples/"
        if action == "actions/upload-artifact":
            return self.upload(root, with_)
        if action == "actions/download-artifact":
            target = root / with_.get("path", ".")
            if not (self.artifacts / with_["name"]).is_dir():
                return False, f"download-artifact: no artifact {with_['name']}"
            shutil.copytree(self.artifacts / with_["name"], target, dirs_exist_ok=True)
            return True, f"downloaded {with_['name']}"
        raise ValueError(f"unsupported step {uses or step!r}")

    def upload(self, root: Path, with_: Mapping[str, str]) -> tuple[bool, str]:
        lines = [ln.strip() for ln in with_["path"].splitlines() if ln.strip()]
        include = [root / ln for ln in lines if not ln.startswith("!")]
        exclude = [root / ln[1:] for ln in lines if ln.startswith("!")]
        hidden = with_.get("include-hidden-files", "false").lower() == "true"
        missing = [p for p in include if not p.exists()]
        if missing:
            return False, f"upload-artifact: no such path {missing[0]}"
        base = Path(os.path.commonpath(include))
        if len(include) == 1 and not include[0].is_dir():
            base = base.parent
        dest = self.artifacts / with_["name"]
        if dest.exists():
            return False, f"upload-artifact: an artifact {with_['name']} exists already"
        for top in include:
            files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
            for f in files:
                rel = f.relative_to(base)
                if any(f == e or e in f.parents for e in exclude):
                    continue
                if not hidden and any(part.startswith(".") for part in f.relative_to(root).parts):
                    continue
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dest / rel)
        if not dest.exists():
            return False, f"upload-artifact: no files for {with_['name']}"
        return True, f"uploaded {with_['name']}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--workflow", type=Path, default=WORKFLOW)
    parser.add_argument(
        "--env", action="append", default=[], help="Override a workflow env KEY=VALUE."
    )
    parser.add_argument("--work", type=Path, help="Where the jobs run (default: a temp dir).")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.env)
    secrets = {k: os.environ.get(k, "") for k in ("AILEDGER_KEYSTORE_JSON", "AILEDGER_PASSWORD")}
    work = args.work or Path(tempfile.mkdtemp(prefix="ailedger-ci-"))
    results = Runner(load_workflow(args.workflow), work, secrets=secrets, env=overrides).run()
    for job in results.values():
        print(f"{job.name}: {job.status}")
        for step in job.steps:
            print(f"  {step.status:8} {step.name}")
            if step.status == "failure":
                print("    " + step.output.strip().replace("\n", "\n    "))
    print(f"work directory: {work}")
    sys.exit(0 if all(j.status == "success" for j in results.values()) else 1)


if __name__ == "__main__":
    main()
