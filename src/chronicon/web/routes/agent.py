"""The agent over HTTP: `/decide_and_act` (the long-standing contract), the rules, a back-test of
rules on past descriptions, and the audit trail (decisions, deliveries, retry)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...agent.act import decide_and_act
from ...agent.backtest import backtest_history
from ...agent.outbox import Outbox
from ...agent.rules import (
    current_rules_text,
    load_current_rules,
    parse_rules,
    rules_path,
    save_rules_text,
)
from ..auth import require_token
from ..paging import Offset, RowId

router = APIRouter(tags=["agent"])

MAX_RULES_CHARS = 200_000


class DecideRequest(BaseModel):
    analysis: str = Field(max_length=100_000, description="the description to decide on")
    run_id: str | None = Field(None, max_length=200)
    video_filename: str | None = Field(None, max_length=500)


class RulesText(BaseModel):
    yaml: str = Field(max_length=MAX_RULES_CHARS)


class RulesView(BaseModel):
    yaml: str
    source: str
    path: str
    labels: list[str]


class BacktestRequest(BaseModel):
    yaml: str | None = Field(None, max_length=MAX_RULES_CHARS,
                             description="rules to try; the current rules when omitted")
    limit: int = Field(200, ge=1, le=2000, description="how many past analyses")


def jsonable(value: Any) -> Any:
    """Agent records come as dataclasses, pydantic models or dicts; the API sends plain JSON."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


@router.post("/decide_and_act", dependencies=[Depends(require_token)])
async def decide_and_act_endpoint(request: Request, body: DecideRequest) -> dict[str, Any]:
    """Decide on a description and act (email, webhook, log) per the rules, attempting each
    delivery before answering `{"decision": {"label", "score", "reason"}, "action": ...,
    "email_status": "sent" | "failed" | "skipped", ...}`."""
    services = request.app.state.services
    settings = services.settings
    # wait=True: like the long-standing endpoint, answer once the email was attempted
    # ("sent" or "failed"); a failed delivery stays in the outbox and is retried.
    answer = await run_in_threadpool(
        lambda: decide_and_act(body.analysis, body.run_id, body.video_filename,
                               settings=settings, store=services.store,
                               rules=load_current_rules(settings), wait=True,
                               outbox=services.outbox))
    return answer.to_dict()


def _rules_view(request: Request) -> RulesView:
    settings = request.app.state.services.settings
    text, source = current_rules_text(settings)
    # Paths relative to the data directory: absolute server paths stay on the server.
    if source != "built-in":
        source = settings.display_path(source) or source
    return RulesView(yaml=text, source=source,
                     path=settings.display_path(rules_path(settings)) or "rules.yaml",
                     labels=load_current_rules(settings).labels)


@router.get("/api/rules", response_model=RulesView)
def get_rules(request: Request) -> RulesView:
    """The rules in force, as YAML, and where they come from."""
    return _rules_view(request)


@router.put("/api/rules", response_model=RulesView, dependencies=[Depends(require_token)],
            responses={422: {"description": "invalid rules; the message names rule and field"}})
def put_rules(request: Request, body: RulesText) -> RulesView:
    """Validate and save the rules (to CHRONICON_RULES, else `<data dir>/rules.yaml`)."""
    save_rules_text(request.app.state.services.settings, body.yaml)
    return _rules_view(request)


@router.post("/api/rules/backtest", dependencies=[Depends(require_token)])
async def backtest_rules(request: Request, body: BacktestRequest) -> dict[str, Any]:
    """Run rules (given, or the current ones) over past descriptions: each analysis's label then
    and now, how many would change, and precision/recall against the past decisions."""
    services = request.app.state.services

    def run() -> dict[str, Any]:
        rules = (parse_rules(body.yaml, "candidate rules") if body.yaml is not None
                 else load_current_rules(services.settings))
        return backtest_history(services.store, rules, body.limit)

    return await run_in_threadpool(run)


@router.get("/api/decisions")
def list_decisions(request: Request, limit: int = Query(50, ge=1, le=500),
                   offset: Offset = 0) -> dict[str, Any]:
    """Every decision the agent made, newest first (the audit trail)."""
    rows = request.app.state.services.store.list_decisions(limit, offset)
    return {"items": [jsonable(r) for r in rows], "limit": limit, "offset": offset}


@router.get("/api/deliveries")
def list_deliveries(request: Request, limit: int = Query(50, ge=1, le=500),
                    offset: Offset = 0,
                    status: str | None = Query(None, max_length=40),
                    decision_id: int | None = Query(None, ge=1, le=2**62,
                                                    description="only this decision's")
                    ) -> dict[str, Any]:
    """Deliveries (email, webhook, log) with status and attempts, newest first."""
    store = request.app.state.services.store
    if decision_id is not None:
        rows = [r for r in store.deliveries_for_decision(decision_id)
                if status is None or r.status == status][offset:offset + limit]
    else:
        rows = store.list_deliveries(limit, offset, status=status)
    return {"items": [jsonable(r) for r in rows], "limit": limit, "offset": offset}


@router.post("/api/deliveries/{delivery_id}/retry", dependencies=[Depends(require_token)],
             responses={404: {}, 409: {"description": "the delivery cannot be retried"}})
async def retry_delivery(request: Request, delivery_id: RowId) -> dict[str, Any]:
    """Make a failed, suppressed or retrying delivery due again now, with fresh attempts."""
    services = request.app.state.services
    outbox = services.outbox or Outbox(services.store, services.settings)
    record = await run_in_threadpool(outbox.retry, delivery_id)
    return {"delivery": jsonable(record)}
