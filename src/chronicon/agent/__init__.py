"""The agent: rules turn a description into a decision; the outbox delivers what it calls for.

`rules` (what to look for), `decide` (how strongly it was found), `act` (record and deliver),
`outbox` (retries, cooldown, dedup), `channels/` (email, webhook, log), `backtest` (rules
against labelled descriptions). Nothing here knows about video.
"""
