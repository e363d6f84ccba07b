"""Real servers for the agent's channels: aiosmtpd (plain, STARTTLS, implicit TLS, AUTH required)
with a certificate made here, a silent TCP server, and an HTTP receiver for webhooks."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chronicon.agent.rules import RuleSet, load_rules
from chronicon.store import Store
from support.mail import SMTP_PASSWORD, SMTP_USER, TlsFiles, free_port

# ---- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 (and localhost), valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return TlsFiles(cert_path, key_path)


# ---- SMTP ---------------------------------------------------------------------------------------


@dataclass
class SmtpServer:
    """A running aiosmtpd; `messages` holds (envelope from, recipients, raw bytes)."""

    mode: str
    port: int
    controller: Controller
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, over TLS)

    def stop(self) -> None:
        self.controller.stop()


class _Recorder:
    def __init__(self) -> None:
        self.server: SmtpServer | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        assert self.server is not None
        self.server.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                     envelope.original_content or envelope.content))
        return "250 OK"


def _authenticator(record: Callable[[str, bool], None]) -> Callable[..., AuthResult]:
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode()
        # session.ssl is only set by STARTTLS; an implicit-TLS socket shows on the transport.
        record(user, server.transport.get_extra_info("ssl_object") is not None)
        ok = user == SMTP_USER and auth_data.password.decode() == SMTP_PASSWORD
        return AuthResult(success=ok, handled=False)
    return authenticate


class _QuietController(Controller):
    def factory(self) -> Any:
        # The implicit-TLS server sets auth_require_tls=False on purpose (see above).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


@pytest.fixture
def smtp_server(tls_files: TlsFiles) -> Iterator[Callable[..., SmtpServer]]:
    """Start an SMTP server: mode "plain", "starttls" or "ssl"; AUTH is always required."""
    started: list[SmtpServer] = []

    def start(mode: str = "starttls", port: int | None = None) -> SmtpServer:
        port = port or free_port()
        recorder = _Recorder()
        logins: list[tuple[str, bool]] = []
        options: dict[str, Any] = {
            "authenticator": _authenticator(lambda u, tls: logins.append((u, tls))),
            "auth_required": True,
        }
        if mode == "plain":
            options["auth_require_tls"] = False  # advertise AUTH in the clear: the trap
        elif mode == "starttls":
            options.update(tls_context=tls_files.server_context(), require_starttls=True)
        elif mode == "ssl":
            # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; this socket is TLS
            # from its first byte.
            options.update(ssl_context=tls_files.server_context(), auth_require_tls=False)
        else:
            raise ValueError(mode)
        controller = _QuietController(recorder, hostname="127.0.0.1", port=port, **options)
        controller.start()
        server = SmtpServer(mode, port, controller, logins=logins)
        recorder.server = server
        started.append(server)
        return server

    yield start
    for server in started:
        with contextlib.suppress(AssertionError, RuntimeError):  # already stopped by the test
            server.stop()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (no SMTP greeting)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


# ---- HTTP (webhooks) ----------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, then 200

    def json_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


# ---- rules and store ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def default_rules() -> RuleSet:
    """The packaged rules, with the embedding model loaded once for the whole session."""
    from chronicon.agent.decide import warm_up

    rules = load_rules(None)
    warm_up(rules)
    return rules


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = Store(tmp_path / "data" / "chronicon.db")
    yield db
    db.close()
