"""Chronicon: local-first video analysis with small vision-language models."""

__version__ = "0.1.0"
