"""The OpenAI-compatible backend against a local HTTP server that speaks the same protocol.

The server stands in for vLLM / llama.cpp / Ollama, which cannot run here: it is the outside
world, so a small fake of it is fair. It records what it was sent so the request is checked too.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from chronicon.analysis import AnalysisOptions, analyze
from chronicon.config import Settings
from chronicon.errors import ModelUnavailable
from chronicon.video.frames import Frame
from chronicon.vlm.backend import GenerationParams, create_backend
from chronicon.vlm.remote import RemoteBackend
from support.media import write_video

ANSWER = ["A red ", "train ", "arrives."]


class _OpenAIHandler(BaseHTTPRequestHandler):
    requests: list[dict] = []
    api_key = "sk-test"
    send_logprobs = True

    def _answer_yes_no(self) -> None:
        choice: dict = {"message": {"role": "assistant", "content": "Yes"}}
        if self.send_logprobs:
            top = [{"token": "Yes", "logprob": math.log(0.6)},
                   {"token": " yes", "logprob": math.log(0.1)},
                   {"token": "No", "logprob": math.log(0.3)}]
            choice["logprobs"] = {"content": [{"token": "Yes", "top_logprobs": top}]}
        body = json.dumps({"choices": [choice]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "bad key"}}')
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802
        if not self._authorised():
            return
        body = json.dumps({"data": [{"id": "smolvlm"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorised():
            return
        length = int(self.headers["Content-Length"])
        request = json.loads(self.rfile.read(length))
        type(self).requests.append(request)
        if not request["stream"]:  # a one-token yes/no answer
            self._answer_yes_no()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ANSWER:
            chunk = {"choices": [{"delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        usage = {"choices": [], "usage": {"prompt_tokens": 321, "completion_tokens": 3}}
        self.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())


@pytest.fixture
def openai_server() -> Iterator[str]:
    _OpenAIHandler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAIHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _frames() -> list[Frame]:
    return [Frame(i * 15, i * 7.5, Image.new("RGB", (64, 48), (i * 80, 0, 0))) for i in range(2)]


def test_streams_pieces_and_sends_frames_with_timestamps(openai_server: str) -> None:
    backend = RemoteBackend(openai_server, model="256m", api_key="sk-test")
    assert list(backend.describe(_frames(), "What happens?", GenerationParams(20, 5))) == ANSWER
    pieces: list[str] = []
    stats = backend.generate(_frames(), "What happens?", GenerationParams(20, 5), pieces.append)
    assert pieces == ANSWER
    assert (stats.prompt_tokens, stats.generated_tokens) == (321, 3)
    sent = _OpenAIHandler.requests[0]
    assert sent["model"] == "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"
    assert (sent["max_tokens"], sent["min_tokens"], sent["temperature"]) == (20, 5, 0.0)
    content = sent["messages"][0]["content"]
    assert [c["text"] for c in content if c["type"] == "text"] == [
        "Frame from 00:00:", "Frame from 00:07:", "What happens?"]
    images = [c["image_url"]["url"] for c in content if c["type"] == "image_url"]
    assert len(images) == 2 and all(u.startswith("data:image/jpeg;base64,") for u in images)


def test_wrong_key_is_model_unavailable_with_the_fix(openai_server: str) -> None:
    backend = RemoteBackend(openai_server, api_key="wrong")
    with pytest.raises(ModelUnavailable, match="CHRONICON_REMOTE_API_KEY"):
        backend.load()


def test_unreachable_server_says_what_to_do() -> None:
    backend = RemoteBackend("http://127.0.0.1:9/v1", timeout=2)
    with pytest.raises(ModelUnavailable, match="cannot be reached.*CHRONICON_BACKEND=local"):
        backend.load()


def test_analyze_runs_through_the_remote_backend_from_settings(openai_server: str,
                                                               tmp_path) -> None:
    """The same analyze() call, with CHRONICON_BACKEND=remote: the backend is swappable."""
    settings = Settings(data_dir=tmp_path, backend="remote", remote_url=openai_server,
                        remote_api_key="sk-test")
    backend = create_backend(settings)
    clip = write_video(tmp_path / "clip.mp4", n_frames=30)
    result = analyze(clip, AnalysisOptions(frames=3, max_tokens=20, min_tokens=5), backend)
    data = result.to_dict()
    assert data["analysis"] == "".join(ANSWER).strip()
    assert data["device"] == f"remote:{openai_server}"
    assert data["tokens"] == {"prompt": 321, "generated": 3}
    assert len(_OpenAIHandler.requests[0]["messages"][0]["content"]) == 2 * 3 + 1


def test_yes_probability_from_logprobs_or_the_parsed_answer(openai_server: str) -> None:
    backend = RemoteBackend(openai_server, api_key="sk-test")
    assert backend.answer_yes_probability(_frames(), "Is a train there?") == pytest.approx(0.7)
    sent = _OpenAIHandler.requests[-1]
    assert (sent["logprobs"], sent["max_tokens"], sent["stream"]) == (True, 1, False)
    _OpenAIHandler.send_logprobs = False
    try:
        assert backend.answer_yes_probability(_frames(), "Is a train there?") == 1.0
    finally:
        _OpenAIHandler.send_logprobs = True
