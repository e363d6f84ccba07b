"""The OpenVINO backend on the tiny SmolVLM, converted by the real `chronicon convert` command.

Skipped when the `openvino` wheel is not installed (`pip install 'chronicon[openvino]'`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("openvino")

import chronicon  # noqa: E402
from chronicon.analysis import AnalysisOptions, analyze  # noqa: E402
from chronicon.cli import app  # noqa: E402
from chronicon.config import Settings  # noqa: E402
from chronicon.errors import ModelUnavailable  # noqa: E402
from chronicon.events import Event, Stage, StageFinished  # noqa: E402
from chronicon.video.frames import Frame  # noqa: E402
from chronicon.vlm.backend import (  # noqa: E402
    GenerationParams,
    GenerationRequest,
    create_backend,
)
from chronicon.vlm.openvino.backend import OpenVINOBackend  # noqa: E402
from chronicon.vlm.transformers.backend import TransformersBackend  # noqa: E402
from chronicon.vlm.transformers.placement import Machine  # noqa: E402
from support.media import write_video  # noqa: E402

pytestmark = pytest.mark.slow  # the conversion traces three models (~30 s)
PROMPT = "Describe the main events in this video."


@pytest.fixture(scope="module")
def converted(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("ov") / "tiny-openvino"
    result = CliRunner().invoke(app, ["convert", str(tiny_model_dir), "--to", "openvino",
                                      "--output", str(target), "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["output"] == str(target) and manifest["weights"] == "fp32"
    return target


@pytest.fixture(scope="module")
def backends(converted: Path, tiny_model_dir: Path) -> Iterator[tuple[OpenVINOBackend,
                                                                      TransformersBackend]]:
    # Both in float32: with bf16 execution a random tiny model's near-tied logits flip.
    ov_backend = OpenVINOBackend(converted, precision="f32")
    fp32_cpu = Machine(cuda_device_count=0, cuda_bf16=False, mps_available=False,
                       cpu_native_bf16=False, bitsandbytes_available=False)
    tf_backend = TransformersBackend(model=str(tiny_model_dir), device="cpu", machine=fp32_cpu)
    ov_backend.load()
    tf_backend.load()
    yield ov_backend, tf_backend


def frames(n: int) -> list[Frame]:
    return [Frame(index=i * 30, timestamp=float(i),
                  image=Image.new("RGB", (64, 48), (i * 60, 90, 200))) for i in range(n)]


def run(backend, frames_: list[Frame], params: GenerationParams) -> tuple[str, list[str], object]:
    pieces: list[str] = []
    stats = backend.generate(frames_, PROMPT, params, pieces.append, video_fps=30.0,
                             video_duration=4.0)
    return "".join(pieces), pieces, stats


def test_same_prompt_and_text_as_transformers(backends) -> None:
    ov_backend, tf_backend = backends
    ov_text, ov_pieces, ov_stats = run(ov_backend, frames(3), GenerationParams(24, 24))
    tf_text, _, tf_stats = run(tf_backend, frames(3), GenerationParams(24, 24))
    assert ov_stats.prompt_tokens == tf_stats.prompt_tokens
    assert ov_stats.generated_tokens == 24
    assert ov_text == tf_text and len(ov_pieces) > 1  # the same text, streamed in pieces
    assert 0 < ov_stats.time_to_first_token_s <= ov_stats.generate_s
    assert {"vision_s", "prefill_s"} <= set(ov_stats.extra)


def test_attention_runs_fused_with_the_kv_cache(backends) -> None:
    """The conversion has the shape the CPU plugin fuses (cache read, append and attention in
    one node per layer): without it, decode copied the whole cache every token (4x slower)."""
    ov_backend, _ = backends
    runtime = ov_backend.language.get_compiled_model().get_runtime_model()
    kinds = {op.get_rt_info()["layerType"].astype(str) for op in runtime.get_ops()}
    assert "ScaledDotProductAttention" in kinds
    assert "Softmax" not in kinds and "MatMul" not in kinds


def test_min_and_max_tokens_and_events(backends) -> None:
    ov_backend, _ = backends
    events: list[Event] = []
    stats = ov_backend.generate(frames(2), PROMPT, GenerationParams(7, 7), lambda p: None,
                                on_event=events.append)
    assert stats.generated_tokens == 7
    assert [e.stage for e in events if isinstance(e, StageFinished)] == [
        Stage.PREPROCESS, Stage.GENERATE]
    assert 1 <= run(ov_backend, frames(1), GenerationParams(5, 0))[2].generated_tokens <= 5
    sampled = run(ov_backend, frames(2), GenerationParams(6, 6, temperature=0.8, top_p=0.9))
    assert sampled[2].generated_tokens == 6


def test_a_batch_gives_each_row_its_own_text_limits_and_stream(backends) -> None:
    """Rows of different prompt lengths (left-padded together) and limits: each row's text is
    the one it gets alone, streamed to its own row, with its own stats."""
    ov_backend, _ = backends
    requests = [GenerationRequest(frames(3), PROMPT, GenerationParams(12, 12), 30.0, 4.0),
                GenerationRequest(frames(1), "What is shown?", GenerationParams(5, 5), 30.0,
                                  1.0),
                GenerationRequest(frames(2), PROMPT, GenerationParams(8, 8), 30.0, 2.0)]
    alone = ["".join(_pieces_of(ov_backend, r)) for r in requests]
    streamed: dict[int, list[str]] = {0: [], 1: [], 2: []}
    stats = ov_backend.generate_batch(requests, lambda row, piece: streamed[row].append(piece))
    assert ["".join(streamed[row]) for row in range(3)] == alone
    assert [s.generated_tokens for s in stats] == [12, 5, 8]
    assert all(0 < s.time_to_first_token_s <= s.generate_s for s in stats)


def _pieces_of(backend: OpenVINOBackend, r: GenerationRequest) -> list[str]:
    pieces: list[str] = []
    backend.generate(r.frames, r.prompt, r.params, pieces.append, video_fps=r.video_fps,
                     video_duration=r.video_duration)
    return pieces


def test_text_only_and_yes_probability(backends) -> None:
    ov_backend, tf_backend = backends
    assert ov_backend.generate_text("Summarise: a car stops.", GenerationParams(4, 4),
                                    lambda p: None).generated_tokens == 4
    p_ov = ov_backend.answer_yes_probability(frames(2), "Is there a car?")
    p_tf = tf_backend.answer_yes_probability(frames(2), "Is there a car?")
    assert p_ov is not None and p_ov == pytest.approx(p_tf, abs=0.02)


def test_analyze_through_the_registry(converted: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, backend="openvino", model=str(converted))
    backend = create_backend(settings)
    assert isinstance(backend, OpenVINOBackend)
    clip = write_video(tmp_path / "clip.mp4", n_frames=30)
    data = analyze(clip, AnalysisOptions(frames=3, max_tokens=8, min_tokens=8), backend).to_dict()
    assert data["backend"] == "openvino" and data["device"] == "cpu"
    assert data["tokens"]["generated"] == 8 and data["analysis"]


def test_auto_takes_openvino_only_for_a_converted_model(converted: Path, tiny_model_dir: Path,
                                                         tmp_path: Path) -> None:
    auto = create_backend(Settings(data_dir=tmp_path, backend="auto", model=str(converted),
                                   device="cpu"))
    assert auto.info().backend == "openvino"
    plain = create_backend(Settings(data_dir=tmp_path, backend="auto", model=str(tiny_model_dir),
                                    device="cpu"))
    assert plain.info().backend == "transformers"


def test_the_runtime_runs_without_torch_or_transformers(converted: Path, tmp_path: Path) -> None:
    """A fresh process analyses a clip through `auto` on the converted model and never imports
    torch or transformers: importing them for the processor alone held ~550 MB."""
    clip = write_video(tmp_path / "clip.mp4", n_frames=30)
    code = (
        "import json, sys\n"
        "from chronicon.analysis import AnalysisOptions, analyze\n"
        "from chronicon.config import Settings\n"
        "from chronicon.vlm.backend import create_backend\n"
        f"settings = Settings(data_dir={str(tmp_path)!r}, backend='auto',"
        f" model={str(converted)!r})\n"
        "backend = create_backend(settings)\n"
        f"data = analyze({str(clip)!r}, AnalysisOptions(frames=2, max_tokens=4, min_tokens=4),"
        " backend).to_dict()\n"
        "print(json.dumps({'backend': data['backend'], 'tokens': data['tokens']['generated'],"
        " 'loaded': sorted(m for m in ('torch', 'transformers', 'torchvision')"
        " if m in sys.modules)}))\n")
    src = str(Path(chronicon.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"backend": "openvino", "tokens": 4, "loaded": []}


def test_a_model_never_converted_says_how(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="chronicon convert 256m --to openvino"):
        create_backend(Settings(data_dir=tmp_path, backend="openvino", model="256m"))
