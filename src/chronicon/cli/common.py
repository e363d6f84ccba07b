"""What every command shares: the Typer app, consoles, settings, and error translation."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from .. import __version__
from ..config import Settings, load_settings
from ..errors import EXIT_BAD_INPUT, EXIT_INTERNAL, ChroniconError
from ..redact import install_log_masking

app = typer.Typer(
    name="chronicon",
    help="Local-first video analysis: sample frames, describe them with SmolVLM2, act on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Results go to stdout (so `--json | jq` works); progress, logs and errors go to stderr.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

log = logging.getLogger("chronicon")

F = TypeVar("F", bound=Callable[..., Any])


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"chronicon {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Chronicon command line."""


def settings_from_cli(**overrides: Any) -> Settings:
    """Settings from env/.env with the command's explicit flags on top (None = flag not given)."""
    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        message = f"invalid setting {field}: {first['msg']}"
        raise typer.Exit(_fail(message, EXIT_BAD_INPUT)) from None


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    install_log_masking()


def _fail(message: str, code: int) -> int:
    # One line, no traceback: the cause and, where the error carries one, the fix.
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return code


def exit_on_error(func: F) -> F:
    """Translate ChroniconError to its exit code and one line on stderr; anything else is an
    internal failure (exit 1) whose traceback goes to the log, not the user's face."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ChroniconError as exc:
            raise typer.Exit(_fail(exc.message, exc.exit_code)) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            log.debug("internal error", exc_info=True)
            raise typer.Exit(_fail(f"internal error: {type(exc).__name__}: {exc} "
                                   "(run with -v for details)", EXIT_INTERNAL)) from None

    return wrapper  # type: ignore[return-value]
