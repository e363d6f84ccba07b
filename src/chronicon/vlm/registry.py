"""Which backend class a name means: a name-keyed registry with lazy imports.

Each entry names the module and class to import only when that backend is asked for (so torch
loads only for the transformers backend), and the extra that provides its dependencies: a
missing one raises ModelUnavailable naming the `pip install` to run. The imported class's own
`name` attribute must match its key. Adding a runtime is one file plus one line here.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadParameter, ModelUnavailable
from ..hardware import nvidia_gpu_present

if TYPE_CHECKING:
    from ..config import Settings
    from .backend import Backend


@dataclass(frozen=True)
class BackendEntry:
    name: str
    target: str  # "module:Class"
    extra: str | None  # the chronicon extra that installs its dependencies
    summary: str


BACKENDS: dict[str, BackendEntry] = {
    e.name: e
    for e in (
        BackendEntry("transformers", "chronicon.vlm.transformers.backend:TransformersBackend",
                     "transformers", "the model on this machine through torch + transformers"),
        BackendEntry("openvino", "chronicon.vlm.openvino.backend:OpenVINOBackend", "openvino",
                     "a model converted with `chronicon convert --to openvino`, on the CPU"),
        BackendEntry("remote", "chronicon.vlm.remote:RemoteBackend", None,
                     "an OpenAI-compatible server (vLLM, llama.cpp server, Ollama)"),
    )
}
# Older names that keep working.
ALIASES: dict[str, str] = {"local": "transformers"}
# Chosen when a backend is created (`choose_auto`): openvino on the CPU when the wheel is
# installed and the model was converted, else transformers.
AUTO = "auto"


def canonical_name(name: str) -> str:
    """The registry key for `name` (aliases resolved); BadParameter for an unknown one."""
    key = (name or "").strip().lower()
    key = ALIASES.get(key, key)
    if key == AUTO:
        return key
    if key not in BACKENDS:
        known = ", ".join(sorted([*BACKENDS, *ALIASES, AUTO]))
        raise BadParameter("backend", f"{name!r} is not a backend; choose one of {known}")
    return key


def choose_auto(settings: Settings, model: str | None, device: str | None) -> str:
    """`auto`: openvino when the device may be the CPU, no CUDA GPU is there, the `openvino`
    wheel is installed and a conversion of the model exists; transformers otherwise."""
    from .openvino import find_converted

    if (device or settings.device) not in ("auto", "cpu"):
        return "transformers"
    if importlib.util.find_spec("openvino") is None:
        return "transformers"
    if find_converted(settings, model or settings.model) is None:
        return "transformers"
    if (device or settings.device) == "auto" and nvidia_gpu_present():
        import torch  # only where a GPU may be: the OpenVINO runtime itself needs no torch

        if torch.cuda.is_available():
            return "transformers"
    return "openvino"


def backend_class(name: str) -> type[Backend]:
    """Import and return the class registered under `name` (or an alias)."""
    entry = BACKENDS[canonical_name(name)]
    module_name, class_name = entry.target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise  # our own module is broken: a bug, not a missing extra
        fix = (f"pip install 'chronicon[{entry.extra}]'" if entry.extra
               else "reinstall chronicon")
        raise ModelUnavailable(
            f"the {entry.name} backend needs {exc.name or 'a package'} which is not installed. "
            f"Fix: {fix}") from None
    cls = getattr(module, class_name)
    if cls.name != entry.name:
        raise RuntimeError(f"{entry.target} declares name {cls.name!r}, registered as "
                           f"{entry.name!r}")
    return cls
