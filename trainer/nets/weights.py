"""Reading other programs' weight files safely: ``torch.load(weights_only=True)``, tensors and
plain containers only, never arbitrary objects (a pickle that needs more could run code)."""
from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch

from trainer.errors import CheckpointImportError
from trainer.modelfile import refused_pickle_message


def safe_load(path, allowed_globals=()) -> object:
    """The object a PyTorch checkpoint holds, loaded with ``torch.load(weights_only=True,
    map_location="cpu")``; ``allowed_globals`` are extra classes the unpickler may build
    (``argparse.Namespace`` for rosinality files).

    Raises :class:`~trainer.errors.CheckpointImportError` for a missing file, a file that is no
    checkpoint, or one that needs more than tensors to load (the message names the class)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointImportError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # torch's note on a newer pickle protocol: not the user's concern
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            if allowed_globals:
                with torch.serialization.safe_globals(list(allowed_globals)):
                    return torch.load(path, map_location="cpu", weights_only=True)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))  # what the unpickler would have called
        raise CheckpointImportError(refused_pickle_message(path, "checkpoint",
                                                           [found.group(1)] if found else None)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        why = str(e) or ("an empty file" if path.stat().st_size == 0 else type(e).__name__)
        raise CheckpointImportError(f"{path}: not a readable PyTorch checkpoint ({why})") from None
