"""The log channel: the decision goes to the audit log (the `chronicon.agent.audit` logger)."""

from __future__ import annotations

import logging

from . import Channel, Delivery, DeliveryResult

audit_log = logging.getLogger("chronicon.agent.audit")


class LogChannel(Channel):
    name = "log"
    priority = 30

    def send(self, delivery: Delivery) -> DeliveryResult:
        decision = delivery.payload.get("decision", {})
        audit_log.info("decision %s: label=%s score=%s reason=%s run=%s video=%s",
                       delivery.decision_id, decision.get("label"), decision.get("score"),
                       decision.get("reason"), delivery.payload.get("run_id"),
                       delivery.payload.get("video_filename"))
        return DeliveryResult(ok=True, detail="written to the audit log")
