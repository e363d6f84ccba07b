"""The backend registry: names, aliases, lazy imports and the missing-extra message."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chronicon.config import Settings
from chronicon.errors import BadParameter, ModelUnavailable
from chronicon.vlm import registry
from chronicon.vlm.backend import Backend


def test_names_and_aliases() -> None:
    assert registry.canonical_name("local") == "transformers"
    assert registry.canonical_name("Remote") == "remote"
    with pytest.raises(BadParameter, match="transformers"):
        registry.canonical_name("llamacpp")


def test_each_class_declares_its_registry_name() -> None:
    for name in registry.BACKENDS:
        try:
            cls = registry.backend_class(name)
        except ModelUnavailable:
            continue  # its extra is not installed here
        assert issubclass(cls, Backend) and cls.name == name


def test_settings_refuse_an_unknown_backend(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, backend="local").backend == "transformers"
    with pytest.raises(ValueError, match="not a backend"):
        Settings(data_dir=tmp_path, backend="tensorrt")


def test_a_missing_dependency_names_the_pip_install(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "chronicon_fake_runtime.py").write_text("import no_such_runtime_package\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.BACKENDS, "fake", registry.BackendEntry(
        "fake", "chronicon_fake_runtime:FakeBackend", "fake", "test"))
    with pytest.raises(ModelUnavailable) as info:
        registry.backend_class("fake")
    assert "no_such_runtime_package" in info.value.message
    assert "pip install 'chronicon[fake]'" in info.value.message
    sys.modules.pop("chronicon_fake_runtime", None)
