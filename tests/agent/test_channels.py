"""The channels registry: each channel file declares its name; the registry feeds rule actions,
the fallback for unconfigured channels and the long-standing single `action` answer."""

from __future__ import annotations

import pytest

from chronicon.agent.channels import CHANNELS, Channel, action_name, channel_configured
from chronicon.agent.rules import parse_rules
from chronicon.config import Settings
from chronicon.errors import RulesError


def test_every_channel_file_is_registered_by_priority() -> None:
    assert list(CHANNELS) == ["email", "webhook", "log"]
    assert all(issubclass(c, Channel) and c.__module__.endswith(f".{name}")
               for name, c in CHANNELS.items())


def test_configured_comes_from_each_channel(tmp_path) -> None:
    bare = Settings(data_dir=tmp_path)
    assert [n for n in CHANNELS if channel_configured(n, bare)] == ["log"]
    hooked = Settings(data_dir=tmp_path, webhook_url="http://127.0.0.1:9/hook")
    assert channel_configured("webhook", hooked)
    assert not channel_configured("sms", hooked)


def test_the_single_action_is_the_highest_priority_channel() -> None:
    assert action_name(["log", "webhook"]) == "webhook"
    assert action_name(["log", "email"]) == "send_email"
    assert action_name([]) == "none"


def test_rule_actions_are_channel_names() -> None:
    with pytest.raises(RulesError, match="use one of email, webhook, log"):
        parse_rules("rules:\n  - {name: t, keywords: [a], actions: [pager]}\n")
