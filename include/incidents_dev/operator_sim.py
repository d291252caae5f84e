"""A simulated operator for the demo: answers, resolves and rejects part of the cases.

Everything goes through the operators' ``case`` command (``python -m incidents case …``, run
in-process), exactly as a person at the regional management centre would type it, so the
monthly report and the executor rating of the demo show real figures (first responses,
resolutions, rejections) instead of zeros.

The simulation is deterministic for a seed. For every case, in id order:

* whether it is answered at all, and then resolved, rejected or left in progress, is drawn with
  probabilities by priority (:data:`POLICY`): hazards are answered most often and fastest;
* the first response comes a drawn number of hours after the case's *base* time, the resolution a
  drawn number of days after the response. The base of a historical case (from a backfilled
  window) is the post's time: the operator records, with ``--at``, how the case was handled back
  then. The base of a live case is its registration: nobody answers a case before it exists;
* an action whose time would lie after ``now`` has not happened yet and is not taken — so most
  live cases, registered minutes ago, are still waiting, and live hazards still escalate;
* one historical hazard that nobody answered is reopened as live (``case reopen``), as an operator
  would when an old report turns out to describe a danger that is still there.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from incidents.cli import main as incidents_main

log = logging.getLogger(__name__)

ACTOR = "operator:demo"


@dataclass(frozen=True)
class Policy:
    """What the simulated operator does with cases of one priority."""

    answered: float
    """Share of cases that get a first response."""
    resolved: float
    """Of the answered cases, the share resolved."""
    rejected: float
    """Of the answered cases, the share rejected (the rest stays in progress)."""
    response_hours: float
    """Median hours to the first response (log-normal)."""
    resolution_days: float
    """Median days from the response to the resolution (log-normal)."""


POLICY = {
    "critical": Policy(answered=0.9, resolved=0.8, rejected=0.05, response_hours=1.5, resolution_days=1.0),
    "high": Policy(answered=0.8, resolved=0.65, rejected=0.1, response_hours=8.0, resolution_days=4.0),
    "normal": Policy(answered=0.7, resolved=0.55, rejected=0.15, response_hours=20.0, resolution_days=7.0),
}
REJECTION_REASONS = ("not_confirmed", "not_our_competence", "duplicate")


@dataclass
class OperatorSummary:
    """What the simulated operator did."""

    cases: int = 0
    answered: int = 0
    resolved: int = 0
    rejected: int = 0
    waiting: int = 0
    """Cases whose first response would lie in the future: not answered yet."""
    reopened: int = 0
    refused: int = 0
    """Commands the ``case`` command refused (exit code 1); none in a healthy run."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _case(*argv: str) -> tuple[int, str]:
    """Run ``incidents case …`` in this process; its exit code and standard output (its errors go
    to standard error, as on the command line)."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            code = incidents_main(["case", *argv])
    except SystemExit as exc:  # argparse refused the arguments
        code = exc.code if isinstance(exc.code, int) else 2
    if code != 0:
        log.warning("case %s refused (exit code %s)", " ".join(argv[:3]), code)
    return code, out.getvalue()


def _utc(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _lognormal(rng: random.Random, median: float) -> float:
    return median * rng.lognormvariate(0.0, 0.8)


def simulate(
    url: str, *, seed: int = 0, now: datetime | None = None, limit: int = 100_000
) -> OperatorSummary:
    """Work the cases of the case database at ``url`` as an operator would (see the module docstring)."""
    now = _utc(now or datetime.now(UTC))
    quiet = logging.getLogger("incidents.cases")  # one INFO line per transition would drown the demo
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        return _simulate(url, random.Random(seed), now, limit)
    finally:
        quiet.setLevel(level)


def _simulate(url: str, rng: random.Random, now: datetime, limit: int) -> OperatorSummary:
    summary = OperatorSummary()
    code, out = _case("list", "--url", url, "--json", "--limit", str(limit))
    if code != 0:
        raise RuntimeError("case list failed: the operator simulation cannot start")
    cases = sorted(json.loads(out), key=lambda c: c["id"])
    summary.cases = len(cases)
    reopen_candidate: int | None = None
    for case in cases:
        if case["status"] not in ("new", "assigned"):
            continue
        if not _work(case, rng, now, url, summary) and reopen_candidate is None:
            if case.get("historical") and case["special_control"]:
                reopen_candidate = case["id"]
    if reopen_candidate is not None:
        code, _ = _case("reopen", str(reopen_candidate), "--url", url, "--actor", ACTOR)
        if code == 0:
            summary.reopened += 1
        else:
            summary.refused += 1
    log.info("operator simulation: %s", summary.as_dict())
    return summary


def _work(
    case: dict[str, Any], rng: random.Random, now: datetime, url: str, summary: OperatorSummary
) -> bool:
    """Answer, then maybe resolve or reject, one case; False when the operator leaves it unanswered."""
    policy = POLICY.get(case["priority"], POLICY["normal"])
    historical = bool(case.get("historical"))
    base = _utc(case["opened_at"]) if historical else _utc(case.get("registered_at") or case["opened_at"])
    answer = rng.random() < policy.answered
    respond_at = base + timedelta(hours=_lognormal(rng, policy.response_hours))
    outcome = rng.random()
    close_at = respond_at + timedelta(days=_lognormal(rng, policy.resolution_days))
    reason = rng.choice(REJECTION_REASONS)
    if not answer:
        return False
    if respond_at > now:
        summary.waiting += 1
        return True
    case_id = str(case["id"])
    code, _ = _case(
        "status", case_id, "in_progress", "--url", url, "--actor", ACTOR, "--at", respond_at.isoformat()
    )
    if code != 0:
        summary.refused += 1
        return True
    summary.answered += 1
    if outcome >= policy.resolved + policy.rejected or close_at > now:
        return True
    resolved = outcome < policy.resolved
    argv = (
        ["status", case_id, "resolved"] if resolved else ["status", case_id, "rejected", "--reason", reason]
    )
    code, _ = _case(*argv, "--url", url, "--actor", ACTOR, "--at", close_at.isoformat())
    if code != 0:
        summary.refused += 1
    elif resolved:
        summary.resolved += 1
    else:
        summary.rejected += 1
    return True
