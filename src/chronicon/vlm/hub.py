"""Model files from the Hugging Face Hub: downloaded once, then read from the local cache.

Runtime-neutral (no torch): the transformers backend loads from the directory, and the
OpenVINO conversion reads the same directory.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from ..errors import ModelUnavailable
from .catalog import ModelRef

# What a model directory needs; weights in other formats (onnx, gguf) are never downloaded.
HUB_FILES = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken"]


def fetch_model_dir(ref: ModelRef, offline: bool = False) -> Path:
    """The model's directory: the given one, or the hub snapshot (downloaded once, then read
    from the cache; only the cache with `offline`). ModelUnavailable names the fix."""
    if ref.local_dir is not None:
        return ref.local_dir
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    model_id = ref.model_id
    fix = (f"download it once with `hf download {model_id}` (or `huggingface-cli download "
           f"{model_id}`) while online, or pass --model PATH to a local model directory")
    try:
        return Path(snapshot_download(model_id, allow_patterns=HUB_FILES,
                                      local_files_only=offline))
    except GatedRepoError:
        why = "it is gated: accept its licence on huggingface.co and run `hf auth login`"
    except RepositoryNotFoundError:
        why = "no such model on the Hugging Face Hub (short names: 256m, 500m, 2.2b)"
    except HFValidationError:
        why = "that is not a valid Hugging Face model id"
    except LocalEntryNotFoundError:
        why = ("offline mode is on (HF_HUB_OFFLINE) and it is not in the local cache"
               if offline else
               "the Hugging Face Hub cannot be reached and it is not in the local cache")
    except (OSError, httpx.HTTPError) as exc:  # HfHubHTTPError, connection, timeouts
        why = f"the download failed ({type(exc).__name__})"
    raise ModelUnavailable(f"model {model_id} is not available: {why}. Fix: {fix}")
