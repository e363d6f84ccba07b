"""Sources that feed Chronicon without a person: watched folders and live streams.

`record.py` keeps their results in the history exactly as `chronicon analyze` does and runs the
agent on them (on every chunk of a timeline, with the chunk's time range).
"""
