"""decide_and_act: decide on a description, record the decision, and deliver through the outbox.

Which channels: every fired rule's `actions`, strongest rule first, each channel once per
decision (the first rule that asks for it owns it, so its cooldown applies). `email` without
SMTP settings and `webhook` without `WEBHOOK_URL` become `log`, so the default rules email when
SMTP is configured and only log otherwise.

The answer keeps the long-standing shape and adds detail:
    {"decision": {"label", "score", "reason"},
     "action": "send_email" | "webhook" | "log" | "none",
     "email_status": "sent" | "queued" | "failed" | "skipped",
     "decision_id": int, "labels": [...], "matches": [...], "deliveries": [...]}
`email_status` is the truth at return time: with `wait=False` a new email delivery is `queued`
(the outbox worker sends it); with `wait=True` it has been attempted once: `sent`, or `failed`
(its retries stay scheduled, see `deliveries`); `skipped` when no email was due (no email action,
email not configured, or suppressed by cooldown/dedup: `deliveries` says which).
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timezone
from typing import Any

from ..config import Settings
from ..store import Store
from ..store.agent_records import DeliveryRecord
from .channels import channel_configured
from .decide import NO_LABEL, Decision, decide
from .outbox import Outbox
from .rules import RuleSet, load_rules

_ACTION_NAMES = {"email": "send_email", "webhook": "webhook", "log": "log"}
_EMAIL_STATUS = {"sent": "sent", "queued": "queued", "retrying": "queued", "sending": "queued",
                 "failed": "failed", "suppressed": "skipped"}


def planned_channels(decision: Decision, rules: RuleSet,
                     settings: Settings) -> list[tuple[str, str, float]]:
    """(rule name, channel, cooldown seconds) for every delivery this decision calls for."""
    plan: list[tuple[str, str, float]] = []
    taken: set[str] = set()
    for match in decision.matches:
        rule = rules.get(match.rule)
        if rule is None:
            continue
        for action in rule.actions:
            channel = action if channel_configured(action, settings) else "log"
            if channel not in taken:
                taken.add(channel)
                plan.append((rule.name, channel, rule.cooldown))
    return plan


def action_name(channels: list[str]) -> str:
    """The long-standing single `action`: email wins over webhook over log."""
    for channel in ("email", "webhook", "log"):
        if channel in channels:
            return _ACTION_NAMES[channel]
    return "none"


def event_key(rule: str, channel: str, video_filename: str | None, analysis: str) -> str:
    """Same rule, channel, video and description (ignoring case and spacing) = the same event."""
    text = re.sub(r"\s+", " ", analysis.strip().lower())
    raw = "\x1f".join([rule, channel, video_filename or "", text])
    return hashlib.sha256(raw.encode()).hexdigest()


def decide_and_act(analysis: str, run_id: str | None, video_filename: str | None, *,
                   settings: Settings, store: Store, rules: RuleSet | None = None,
                   frames: list[bytes] | None = None, wait: bool = False,
                   outbox: Outbox | None = None) -> dict[str, Any]:
    """Decide on `analysis`, record the decision and its deliveries; see the module docstring.
    `frames` (encoded JPEG/PNG images) go inline into emails."""
    rules = rules if rules is not None else load_rules(settings.rules_path)
    decision = decide(analysis, rules)
    plan = planned_channels(decision, rules, settings)
    action = action_name([channel for _, channel, _ in plan])
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
               "matches": [m.to_dict() for m in decision.matches]}
    encoded_frames = [base64.b64encode(f).decode("ascii") for f in frames or []]
    deliveries: list[DeliveryRecord] = []
    for rule_name, channel, cooldown_s in plan:
        deliveries.append(outbox.enqueue(
            decision_id=decision_id, rule=rule_name, channel=channel,
            dedup_key=event_key(rule_name, channel, video_filename, analysis),
            payload={**payload, "rule": rule_name, "cooldown_s": cooldown_s,
                     "frames": encoded_frames if channel == "email" else []},
            cooldown_s=cooldown_s, now=now))
    if wait:
        deliveries = [_attempt_now(outbox, d) for d in deliveries]

    email = next((d for d in deliveries if d.channel == "email"), None)
    return {
        "decision": decision.summary(),
        "action": action if decision.label != NO_LABEL else "none",
        "email_status": _EMAIL_STATUS[email.status] if email else "skipped",
        "decision_id": decision_id,
        "labels": decision.labels,
        "matches": [m.to_dict() for m in decision.matches],
        "deliveries": [_summary(d) for d in deliveries],
    }


def _attempt_now(outbox: Outbox, delivery: DeliveryRecord) -> DeliveryRecord:
    if delivery.status != "queued":
        return delivery
    return outbox.deliver_now(delivery.id) or delivery


def _summary(delivery: DeliveryRecord) -> dict[str, Any]:
    return {"id": delivery.id, "rule": delivery.rule, "channel": delivery.channel,
            "status": delivery.status, "attempts": delivery.attempts,
            "next_attempt_at": delivery.next_attempt_at, "error": delivery.last_error,
            "note": delivery.note}
