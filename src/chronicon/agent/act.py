"""decide_and_act: decide on a description, record the decision, and deliver through the outbox.

Which channels: every fired rule's `actions`, strongest rule first, each channel once per
decision (the first rule that asks for it owns it, so its cooldown applies). A channel that is
not configured (email without SMTP settings, webhook without `WEBHOOK_URL`) becomes `log`, so
the default rules email when SMTP is configured and only log otherwise.

The answer is an `AgentAnswer`; its `to_dict()` keeps the long-standing shape and adds detail:
    {"decision": {"label", "score", "reason"},
     "action": "send_email" | "webhook" | "log" | "none",
     "email_status": "sent" | "queued" | "failed" | "skipped",
     "decision_id": int, "labels": [...], "matches": [...], "deliveries": [...]}
`email_status` is the truth at return time: with `wait=False` a new email delivery is `queued`
(the outbox worker sends it); with `wait=True` it has been attempted once: `sent`, or `failed`
(its retries stay scheduled, see `deliveries`); `skipped` when no email was due (no email action,
email not configured, or suppressed by cooldown/dedup: `deliveries` says which).
With `dry_run=True` nothing is recorded or sent: the answer says what would be done
(`"dry_run": true`, no `decision_id` or `deliveries`).

A fired rule with `verify` asks the VLM its yes/no question first (see verify.py); a rejected
firing's deliveries are recorded `suppressed` with `not verified, p=0.12`, and each such match
carries its `verification` (question, p_yes, threshold, verified, answer, method). Deliveries
of a rule with a cooldown remember what the description means, so a later firing that means
the same within the cooldown is a duplicate (the outbox decides).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..config import Settings
from ..store import Store
from ..store.agent_records import DeliveryRecord
from .channels import FALLBACK_CHANNEL, action_name, channel_configured
from .decide import NO_LABEL, Decision, decide
from .meaning import get_embedder
from .outbox import AlertMeaning, Outbox
from .rules import RuleSet, load_current_rules
from .verify import Verification, Verifier, verify

_EMAIL_STATUS = {"sent": "sent", "queued": "queued", "retrying": "queued", "sending": "queued",
                 "failed": "failed", "suppressed": "skipped"}


@dataclass(frozen=True)
class DeliveryOutcome:
    """A delivery as the answer shows it: its state when decide_and_act returned."""

    id: int
    rule: str
    channel: str
    status: str
    attempts: int
    next_attempt_at: str | None
    error: str | None
    note: str | None

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryOutcome:
        return cls(id=record.id, rule=record.rule, channel=record.channel,
                   status=record.status, attempts=record.attempts,
                   next_attempt_at=record.next_attempt_at, error=record.last_error,
                   note=record.note)


@dataclass
class AgentAnswer:
    """What decide_and_act decided and did; `to_dict()` is the JSON the API and CLI print."""

    decision: Decision
    action: str
    email_status: str = "skipped"
    decision_id: int | None = None
    deliveries: list[DeliveryOutcome] = field(default_factory=list)
    dry_run: bool = False

    @property
    def label(self) -> str:
        return self.decision.label

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "decision": self.decision.summary(), "action": self.action,
            "email_status": self.email_status}
        if self.dry_run:
            data["dry_run"] = True
        else:
            data["decision_id"] = self.decision_id
        data["labels"] = self.decision.labels
        data["matches"] = [m.to_dict() for m in self.decision.matches]
        if not self.dry_run:
            data["deliveries"] = [asdict(d) for d in self.deliveries]
        return data


@dataclass(frozen=True)
class PlannedDelivery:
    """One delivery a decision calls for; `suppressed` says why it will not be sent."""

    rule: str
    channel: str
    cooldown: float
    suppressed: str | None = None


def planned_channels(decision: Decision, rules: RuleSet, settings: Settings,
                     rejected: dict[str, str] | None = None) -> list[PlannedDelivery]:
    """Every delivery this decision calls for. Rules in `rejected` (name -> why, e.g. not
    verified) come last and only for channels no accepted rule took, as suppressed rows."""
    rejected = rejected or {}
    plan: list[PlannedDelivery] = []
    taken: set[str] = set()
    matches = sorted(decision.matches, key=lambda m: m.rule in rejected)  # stable
    for match in matches:
        rule = rules.get(match.rule)
        if rule is None:
            continue
        for action in rule.actions:
            channel = action if channel_configured(action, settings) else FALLBACK_CHANNEL
            if channel not in taken:
                taken.add(channel)
                plan.append(PlannedDelivery(rule.name, channel, rule.cooldown,
                                            rejected.get(rule.name)))
    return plan


def verify_matches(decision: Decision, rules: RuleSet,
                   verifier: Verifier | None) -> dict[str, Verification]:
    """Ask each fired rule's `verify` question; the answers by rule name, also set on the
    matches (so the decision records them)."""
    answers: dict[str, Verification] = {}
    for match in decision.matches:
        rule = rules.get(match.rule)
        if rule is None or rule.verify is None:
            continue
        answers[rule.name] = verify(rule.verify, rule.verify_threshold, verifier)
        match.verification = answers[rule.name].to_dict()
    return answers


def _with_verification(decision: Decision, answers: dict[str, Verification]) -> Decision:
    """The decision whose reason also says what verification found."""
    if not answers:
        return decision
    notes = "; ".join(f"{name} {answer.note}" if len(answers) > 1 else answer.note
                      for name, answer in answers.items())
    return dataclasses.replace(decision, reason=f"{decision.reason} ({notes})")


def event_key(rule: str, channel: str, video_filename: str | None, analysis: str) -> str:
    """Same rule, channel, video and description (ignoring case and spacing) = the same event."""
    text = re.sub(r"\s+", " ", analysis.strip().lower())
    raw = "\x1f".join([rule, channel, video_filename or "", text])
    return hashlib.sha256(raw.encode()).hexdigest()


def moment(start: float | None, end: float | None) -> str | None:
    """"03:20" or "03:20-03:50" for a decision on a timeline chunk; None outside timelines."""
    if start is None:
        return None

    def clock(seconds: float) -> str:
        whole = int(seconds)
        hours, rest = divmod(whole, 3600)
        return (f"{hours}:" if hours else "") + f"{rest // 60:02d}:{rest % 60:02d}"

    return clock(start) + (f"-{clock(end)}" if end is not None and end > start else "")


def decide_and_act(analysis: str, run_id: str | None, video_filename: str | None, *,
                   settings: Settings, store: Store | None, rules: RuleSet | None = None,
                   frames_id: str | None = None, frame_positions: list[int] | None = None,
                   wait: bool = False,
                   outbox: Outbox | None = None, start: float | None = None,
                   end: float | None = None, dry_run: bool = False,
                   verifier: Verifier | None = None) -> AgentAnswer:
    """Decide on `analysis`, record the decision and its deliveries; see the module docstring.
    `frames_id`: the analysis whose saved frames emails show inline (the email channel reads
    them when it sends; deliveries hold the id, never the images), `frame_positions` which of
    them (default: all; a timeline chunk shows its own); `start`/`end` (seconds)
    place a timeline chunk's decision in its video; `verifier` answers rules' `verify`
    questions on the analysis' frames (None: nobody can, such firings stand unverified).
    `dry_run` records and sends nothing (no store needed)."""
    rules = rules if rules is not None else load_current_rules(settings)
    decision = decide(analysis, rules)
    answers = verify_matches(decision, rules, verifier)
    decision = _with_verification(decision, answers)
    rejected = {name: answer.note for name, answer in answers.items() if answer.rejected}
    plan = planned_channels(decision, rules, settings, rejected)
    action = action_name([p.channel for p in plan if p.suppressed is None])
    if decision.label == NO_LABEL:
        action = "none"
    if dry_run:
        return AgentAnswer(decision, action, dry_run=True)
    if store is None:
        raise ValueError("decide_and_act needs a store unless dry_run=True")
    now = datetime.now(timezone.utc)
    decision_id = store.insert_decision(
        created_at=now, run_id=run_id, video_filename=video_filename, label=decision.label,
        score=decision.score, reason=decision.reason,
        rule=decision.matches[0].rule if decision.matches else None, action=action,
        analysis=analysis, matches=[m.to_dict() for m in decision.matches])

    outbox = outbox or Outbox(store, settings)
    payload = {"decision_id": decision_id, "decision": decision.summary(),
               "labels": decision.labels, "analysis": analysis, "run_id": run_id,
               "video_filename": video_filename, "created_at": now.isoformat(),
               "start": start, "end": end, "moment": moment(start, end),
               "matches": [m.to_dict() for m in decision.matches]}
    meanings = _alert_meanings(store, decision_id, analysis, rules, plan)
    deliveries: list[DeliveryRecord] = []
    for planned in plan:
        deliveries.append(outbox.enqueue(
            decision_id=decision_id, rule=planned.rule, channel=planned.channel,
            dedup_key=event_key(planned.rule, planned.channel, video_filename, analysis),
            payload={**payload, "rule": planned.rule, "cooldown_s": planned.cooldown,
                     "frames_id": frames_id if planned.channel == "email" else None,
                     "frame_positions": (frame_positions if planned.channel == "email"
                                         else None)},
            cooldown_s=planned.cooldown, now=now, meaning=meanings.get(planned.rule),
            suppress=planned.suppressed))
    if wait:
        deliveries = [_attempt_now(outbox, d) for d in deliveries]

    email = next((d for d in deliveries if d.channel == "email"), None)
    return AgentAnswer(decision, action,
                       email_status=_EMAIL_STATUS[email.status] if email else "skipped",
                       decision_id=decision_id,
                       deliveries=[DeliveryOutcome.of(d) for d in deliveries])


def _alert_meanings(store: Store, decision_id: int, analysis: str, rules: RuleSet,
                    plan: list[PlannedDelivery]) -> dict[str, AlertMeaning]:
    """For rules whose deliveries can be duplicates in meaning (a cooldown and a
    `dedup_similarity`): the description's vector, stored with the decision, by rule name."""
    thresholds = {}
    for planned in plan:
        rule = rules.get(planned.rule)
        if (planned.suppressed is None and planned.cooldown > 0 and rule is not None
                and rule.dedup_similarity is not None):
            thresholds[rule.name] = rule.dedup_similarity
    if not thresholds or not analysis.strip():
        return {}
    vector = get_embedder(rules.model).encode([analysis])[0]
    store.set_decision_vector(decision_id, rules.model, vector)
    return {name: AlertMeaning(rules.model, vector, threshold)
            for name, threshold in thresholds.items()}


def _attempt_now(outbox: Outbox, delivery: DeliveryRecord) -> DeliveryRecord:
    if delivery.status != "queued":
        return delivery
    return outbox.deliver_now(delivery.id) or delivery
