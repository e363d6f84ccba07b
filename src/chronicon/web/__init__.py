"""The web application: JSON API, Server-Sent Events and the pages (`create_app`)."""

from .app import create_app

__all__ = ["create_app"]
