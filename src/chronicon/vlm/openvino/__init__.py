"""The OpenVINO runtime: `export.py` converts a model once (torch + transformers), `backend.py`
runs the conversion (the `openvino` wheel). Where conversions live is decided here, without
importing either, so `auto` can look for one cheaply.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...config import Settings

MANIFEST = "chronicon_openvino.json"
# What a conversion's manifest must say to be run (kept here, not in export.py, which defines
# torch modules at import: the runtime never imports it). 2: beam_idx input, float attention
# mask (fused attention with the KV cache), causal mask by cache slot (left-padded batches).
FORMAT_VERSION = 2
WEIGHT_PREFERENCE = ("int8", "fp32")


def converted_dir(settings: Settings, model: str, weights: str) -> Path:
    """Where `chronicon convert` puts `model` converted with `weights` by default."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("._") or "model"
    return settings.data_dir / "models" / "openvino" / f"{slug}-{weights}"


def find_converted(settings: Settings, model: str) -> Path | None:
    """A directory holding `model` converted to OpenVINO: the model path itself, or the
    default place of an int8, then an fp32 conversion."""
    given = Path(model).expanduser()
    if (given / MANIFEST).is_file():
        return given
    for weights in WEIGHT_PREFERENCE:
        candidate = converted_dir(settings, model, weights)
        if (candidate / MANIFEST).is_file():
            return candidate
    return None
