"""Which model a name means: the SmolVLM2 presets by short name, any hub id, or a local directory.

Each preset knows its parameter count so memory can be estimated before anything is downloaded
or loaded; for other models the count is read from the safetensors headers once the files are
on disk (`count_parameters`).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadParameter


@dataclass(frozen=True)
class ModelPreset:
    short_name: str
    hub_id: str
    parameters: int
    note: str


# Parameter counts are rounded (model cards); they only feed the memory estimate.
PRESETS: dict[str, ModelPreset] = {
    p.short_name: p
    for p in (
        ModelPreset("256m", "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", 256_000_000,
                    "default, fast"),
        ModelPreset("500m", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct", 507_000_000,
                    "balanced"),
        ModelPreset("2.2b", "HuggingFaceTB/SmolVLM2-2.2B-Instruct", 2_250_000_000,
                    "high quality"),
    )
}
DEFAULT_MODEL = "256m"


@dataclass(frozen=True)
class ModelRef:
    """A resolved model name: `model_id` is what the result records (hub id or the directory);
    `local_dir` is set when the name was a directory on disk; `parameters` is known for presets."""

    name: str
    model_id: str
    local_dir: Path | None = None
    parameters: int | None = None

    @property
    def is_local(self) -> bool:
        return self.local_dir is not None


def resolve_model(name: str | None) -> ModelRef:
    """Short name (`256m`, `500m`, `2.2b`), an `owner/name` hub id, or a path to a model
    directory. A path-looking name that does not exist is a bad parameter, not a hub lookup."""
    name = (name or DEFAULT_MODEL).strip()
    if not name:
        raise BadParameter("model", "empty model name")
    preset = PRESETS.get(name.lower())
    if preset is not None:
        return ModelRef(name, preset.hub_id, parameters=preset.parameters)
    for p in PRESETS.values():
        if p.hub_id.lower() == name.lower():
            return ModelRef(name, p.hub_id, parameters=p.parameters)
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelRef(name, str(path.resolve()), local_dir=path.resolve())
    if path.exists():
        raise BadParameter("model", f"{name} is a file; pass a model directory, a hub id "
                                    f"(owner/name) or one of {', '.join(PRESETS)}")
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") != 1
    if looks_like_path:
        raise BadParameter("model", f"no model directory at {name}, and it is not a hub id "
                                    f"(owner/name) or one of {', '.join(PRESETS)}")
    return ModelRef(name, name)


def count_parameters(model_dir: Path) -> int | None:
    """Parameter count from the safetensors headers in `model_dir` (no weights read);
    None when there are no safetensors files."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with file.open("rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(header_len))
        for key, entry in header.items():
            if key == "__metadata__":
                continue
            n = 1
            for dim in entry["shape"]:
                n *= dim
            total += n
    return total
