"""Batched progress events: order kept, token pieces joined, everything sent before close()."""

from __future__ import annotations

import time

import pytest

from chronicon.worker.client import JobTaken
from chronicon.worker.uplink import EventUplink


def test_events_arrive_in_order_with_token_pieces_joined() -> None:
    batches: list[list[dict]] = []
    uplink = EventUplink(batches.append, window=0.05)
    uplink.emit("stage_started", {"stage": "generate"})
    for piece in ["A ", "red ", "car"]:
        uplink.emit("token", {"text": piece})
    uplink.emit("stage_finished", {"stage": "generate", "seconds": 1.0})
    uplink.close()
    sent = [e for batch in batches for e in batch]
    assert [e["kind"] for e in sent] == ["stage_started", "token", "stage_finished"]
    assert sent[1]["data"]["text"] == "A red car"
    assert len(batches) <= 2


def test_many_pieces_take_few_requests() -> None:
    batches: list[list[dict]] = []
    uplink = EventUplink(batches.append, window=0.05)
    for n in range(500):
        uplink.emit("token", {"text": f"{n} "})
        time.sleep(0.0005)
    uplink.close()
    text = "".join(e["data"]["text"] for batch in batches for e in batch)
    assert text == "".join(f"{n} " for n in range(500))
    assert len(batches) < 50


def test_a_job_taken_elsewhere_stops_reporting() -> None:
    def refuse(batch: list[dict]) -> None:
        raise JobTaken("held by another worker")

    uplink = EventUplink(refuse, window=0.01)
    uplink.emit("stage_started", {"stage": "probe"})
    with pytest.raises(JobTaken):
        uplink.close()
