"""The model file: one ``.safetensors`` file holding a generator's weights and its model card
(JSON under the metadata key ``gan_studio``). Loading never unpickles: a pickle-based
checkpoint is refused with a pointer to ``gan-trainer import``."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save as save_bytes

from trainer.rundir import atomic_write

CARD_KEY = "gan_studio"
FORMAT_VERSION = 1
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")


from trainer.errors import ModelFileError  # noqa: E402  (re-exported)


INT8_SCALE = ":int8_scale"  # suffix of the key that holds an int8 tensor's per-channel scales
INT8_MIN_NUMEL = 1024  # smaller floating tensors (biases, norms, statistics) stay float16


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one float32 scale per output channel, w ~= q * scale. The channel axis
    is the first longer than 1 (dim 0 of a convolution; dim 1 of StyleGAN's (1, out, in, k, k)
    modulated weights); the scale keeps w's rank, so it broadcasts."""
    w = w.detach().float()
    axis = next((i for i, n in enumerate(w.shape) if n > 1), 0)
    scale = w.abs().amax(dim=[i for i in range(w.dim()) if i != axis], keepdim=True).clamp_min(1e-30) / 127
    return torch.round(w / scale).clamp_(-127, 127).to(torch.int8), scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale.float()


def save_model(path, tensors: dict[str, torch.Tensor], card: dict, dtype: torch.dtype | None = None) -> Path:
    """Write ``tensors`` and ``card`` atomically. ``dtype`` float16 or bfloat16 stores floating
    tensors smaller; int8 stores each weight of at least ``INT8_MIN_NUMEL`` values as int8 with
    a scale per output channel (``KEY:int8_scale``) and the rest as float16, about a quarter of
    float32. All come back as float32 on load."""
    out = {}
    for k, v in tensors.items():
        v = v.detach().to("cpu")
        if k.endswith(INT8_SCALE):
            raise ValueError(f"tensor name {k!r} ends with the reserved suffix {INT8_SCALE!r}")
        if dtype == torch.int8 and v.is_floating_point() and v.dim() >= 2 and v.numel() >= INT8_MIN_NUMEL:
            v, out[k + INT8_SCALE] = quantize_int8(v)
        elif dtype is not None and v.is_floating_point():
            v = v.to(torch.float16 if dtype == torch.int8 else dtype)
        out[k] = v.contiguous().clone()
    card = {"format": FORMAT_VERSION, **card}
    if dtype is not None:
        card["stored_dtype"] = str(dtype).replace("torch.", "")
    path = Path(path)
    atomic_write(path, save_bytes(out, metadata={CARD_KEY: json.dumps(card)}))
    return path


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n < 100_000_000 and head[8:9] == b"{":
            return "safetensors"
    if head[:2] == b"PK":
        return "zip"  # torch.save's zip format (a pickle inside)
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


MAX_HEADER_BYTES = 100_000_000  # a safetensors header (tensor names, shapes, offsets and the card)
MAX_CARD_BYTES = 1_000_000  # the card's JSON; GAN Studio's own are a few kB
IMAGE_SIZE_RANGE = (8, 4096)

# known card fields: (types, check) where check(value) returns what is wrong, or None
_STR_LIMIT = 10_000


def _short_str(v):
    return None if len(v) <= _STR_LIMIT else f"a string of {len(v):,} characters (at most {_STR_LIMIT:,})"


def _int_range(lo, hi):
    def check(v):
        return None if lo <= v <= hi else f"{v} is outside {lo}..{hi}"
    return check


def _list_of(kind, what, check=None):
    def run(v):
        if len(v) > 100_000:
            return f"a list of {len(v):,} items"
        for x in v:
            if not isinstance(x, kind) or isinstance(x, bool) and kind is not bool:
                return f"expected a list of {what}, found {type(x).__name__} {x!r:.40}"
            problem = check(x) if check else None
            if problem:
                return problem
        return None
    return run


def _finite_pair(v):
    import math
    if len(v) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                              for x in v):
        return "expected two finite numbers, e.g. [-1, 1]"
    return None


def _nets(v):
    import math
    for name, spec in v.items():
        if (not isinstance(spec, dict) or not isinstance(spec.get("name"), str)
                or not isinstance(spec.get("args", {}), dict)):
            return f"net {name!r}: expected {{\"name\": str, \"args\": {{...}}}}"
        for k, a in spec.get("args", {}).items():
            if isinstance(a, bool) or a is None or isinstance(a, str) and len(a) <= 200:
                continue
            if isinstance(a, int):
                if not 0 <= a <= 65536:
                    return f"net {name!r} argument {k} = {a} is outside 0..65536"
            elif isinstance(a, float):
                if not math.isfinite(a):
                    return f"net {name!r} argument {k} = {a} is not a finite number"
            elif isinstance(a, list) and len(a) <= 64 and all(isinstance(x, (int, float, str)) for x in a):
                continue
            else:
                return f"net {name!r} argument {k}: unexpected {type(a).__name__}"
    return None


_STR, _INT, _LIST, _DICT = (str,), (int,), (list,), (dict,)
CARD_FIELDS = {
    "format": (_INT, _int_range(1, 1_000)),
    "method": (_STR, _short_str), "task": (_STR, _short_str), "preset": (_STR, _short_str),
    "direction": (_STR, _short_str), "kind": (_STR, _short_str), "dataset": (_STR, _short_str),
    "notes": (_STR, _short_str), "stored_dtype": (_STR, _short_str),
    "image_size": (_INT, _int_range(*IMAGE_SIZE_RANGE)), "input_size": (_INT, _int_range(*IMAGE_SIZE_RANGE)),
    "channels": (_INT, _int_range(1, 4)), "scale": (_INT, _int_range(1, 16)), "n_latent": (_INT, _int_range(1, 64)),
    "value_range": (_LIST, _finite_pair),
    "nets": (_DICT, _nets), "net": (_DICT, None),
    "domains": (_LIST, _list_of(str, "names")), "directions": (_LIST, _list_of(str, "names")),
    "classes": (_LIST, _list_of(str, "names")), "exclusive_groups": (_LIST, _list_of(list, "lists of names")),
    "layer_resolutions": (_LIST, _list_of(int, "sizes", _int_range(1, IMAGE_SIZE_RANGE[1]))),
    "training": (_DICT, None), "inference": (_DICT, None), "eval": (_DICT, None), "metrics": (_DICT, None),
    "latent_prior": (_DICT, None), "trained": (_DICT, None), "held_out": (_DICT, None),
    "held_out_nuisance": (_DICT, None),
}


def check_card(card, path="model card") -> dict:
    """``card`` validated as data before anything uses it: a JSON object whose known fields have
    their types and ranges (image_size 8..4096, ...). Returns it; raises :class:`ModelFileError`
    naming the field otherwise. Unknown fields pass (newer versions may add some)."""
    if not isinstance(card, dict):
        raise ModelFileError(f"{path}: the model card is a JSON {type(card).__name__}, not an object; "
                             "not a GAN Studio model file (or a damaged one)")
    for key, (types, check) in CARD_FIELDS.items():
        if key not in card:
            continue
        value = card[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise ModelFileError(f"{path}: the model card's {key} is {type(value).__name__} {value!r:.60}, "
                                 f"expected {' or '.join(t.__name__ for t in types)}")
        problem = check(value) if check else None
        if problem:
            raise ModelFileError(f"{path}: the model card's {key} is not usable: {problem}")
    for name, net in (card.get("nets") or {}).items():
        if not isinstance(name, str):
            raise ModelFileError(f"{path}: the model card names a net {name!r}")
    return card


def read_card(path) -> dict:
    """The model card alone (reads only the file's header), validated by :func:`check_card`."""
    path = _check(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_HEADER_BYTES or n > size - 8:
            raise ModelFileError(f"{path}: truncated or corrupt model file (its header claims {n:,} bytes, "
                                 f"the file has {size:,})")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ModelFileError(f"{path}: truncated or corrupt model file (its header is unreadable)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        meta = {}
    ends = [e["data_offsets"][1] for k, e in header.items() if k != "__metadata__" and isinstance(e, dict)
            and isinstance(e.get("data_offsets"), list) and len(e["data_offsets"]) == 2
            and isinstance(e["data_offsets"][1], int)] if isinstance(header, dict) else []
    if ends and 8 + n + max(ends) > size:
        raise ModelFileError(f"{path}: truncated model file (its tensors need {8 + n + max(ends):,} bytes, the file "
                             f"has {size:,}): copy or download it again")
    if CARD_KEY not in meta:
        raise ModelFileError(f"{path}: a safetensors file without a GAN Studio model card "
                             "(import reference checkpoints with `gan-trainer import`)")
    text = meta[CARD_KEY]
    if not isinstance(text, str):
        raise ModelFileError(f"{path}: the model card is not text")
    if len(text) > MAX_CARD_BYTES:
        raise ModelFileError(f"{path}: the model card is {len(text):,} characters; at most {MAX_CARD_BYTES:,} "
                             "are read")
    try:
        card = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ModelFileError(f"{path}: the model card is not valid JSON") from None
    return check_card(card, path)


def _check(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: " + ("a folder, not a model file (a run folder is exported with "
                                            "gan-trainer export RUN)" if path.is_dir() else "no such model file"))
    kind = _sniff(path)
    if kind in ("zip", "pickle") or (kind != "safetensors" and path.suffix.lower() in PICKLE_SUFFIXES):
        raise ModelFileError(
            f"{path}: a PyTorch pickle checkpoint, which GAN Studio never loads directly (unpickling can "
            f"run code). Convert it first: gan-trainer import {path} -o model.safetensors")
    if kind != "safetensors":
        raise ModelFileError(f"{path}: not a model file (expected a .safetensors file written by GAN Studio)")
    return path


_SAFE_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "_codecs.encode", "numpy.core.multiarray._reconstruct",
                         "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype",
                         "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "builtins.set",
                         "builtins.frozenset", "builtins.bytearray", "builtins.complex", "builtins.slice")


def pickle_globals(path) -> list[str]:
    """The Python callables a pickle (or a torch.save zip) would import to load: read from its
    opcodes, nothing is run. Empty for a file that is not a readable pickle."""
    import io
    import pickletools
    import zipfile
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.endswith(".pkl")]
                data = z.read(names[0]) if names else b""
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile, KeyError):
        return []
    found, pushed, memo = [], [], {}
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            name = op.name
            if name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif name == "STACK_GLOBAL":
                module, qualname = pushed[-2:] if len(pushed) >= 2 else (None, None)
                found.append(f"{module}.{qualname}" if isinstance(module, str) and isinstance(qualname, str)
                             else "an object it names indirectly")
            if name == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = pushed[-1] if pushed else None
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                pushed.append(memo.get(arg))
            elif name not in ("FRAME", "PROTO"):
                pushed.append(arg if isinstance(arg, str) else None)
    except Exception:  # a torn or non-pickle file: what was read so far
        pass
    return found


def unsafe_pickle_globals(path) -> list[str]:
    """Of :func:`pickle_globals`, the ones beyond tensors and plain containers: what makes loading
    the file run code of the file's choosing."""
    return [g for g in dict.fromkeys(pickle_globals(path)) if not g.startswith(_SAFE_GLOBAL_PREFIXES)]


def refused_pickle_message(path, what: str = "file", calls: list[str] | None = None) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, said plainly: a pickle that would run
    code (naming what it calls: ``calls``, else what :func:`unsafe_pickle_globals` reads), else a
    damaged or foreign file."""
    unsafe = calls or unsafe_pickle_globals(path)
    if unsafe:
        shown = ", ".join(unsafe[:3]) + (f" and {len(unsafe) - 3} more" if len(unsafe) > 3 else "")
        return (f"{path}: refused: this {what} would run code when loaded (it calls {shown}); it was not "
                "written by GAN Studio. Nothing in it was run.")
    return f"{path}: not a readable {what} (damaged, or written by something else)"


def load_model(path, device="cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, card) of a model file; floating tensors come back as float32."""
    path = _check(path)
    card = read_card(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as e:
        raise ModelFileError(f"{path}: corrupt safetensors file ({e})") from None
    scales = {k[:-len(INT8_SCALE)]: tensors.pop(k) for k in [k for k in tensors if k.endswith(INT8_SCALE)]}
    for k, scale in scales.items():
        q = tensors.get(k)
        if (q is None or q.dtype != torch.int8 or scale.dim() != q.dim() or not scale.is_floating_point()
                or any(a not in (1, b) for a, b in zip(scale.shape, q.shape))
                or sum(a > 1 for a in scale.shape) > 1 or not torch.isfinite(scale).all()):
            raise ModelFileError(f"{path}: corrupt model file: the int8 scales {k}{INT8_SCALE} do not match "
                                 f"an int8 tensor {k} (re-export the model)")
        tensors[k] = dequantize_int8(q, scale)
    unscaled = [k for k, v in tensors.items() if v.dtype == torch.int8]
    if unscaled:
        raise ModelFileError(f"{path}: corrupt model file: int8 tensor {unscaled[0]} has no scales "
                             "(re-export the model)")
    tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}
    return tensors, card


def subdict(tensors: dict, prefix: str) -> dict:
    """The entries under ``prefix.`` with the prefix removed (``G.``, ``G_A.``, ...)."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def load_strict(module: torch.nn.Module, state: dict, what: str) -> None:
    """``load_state_dict(strict=True)`` with an error that lists missing and unexpected keys."""
    check_state(module, state, what)
    module.load_state_dict(state, strict=True)


def check_state(module: torch.nn.Module, state: dict, what: str) -> None:
    """ModelFileError (``what`` does not match its network: the missing, unexpected and misshapen
    keys) unless ``state`` has exactly ``module``'s keys and shapes; ``module`` may be on the meta
    device (shapes without memory)."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
             for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        def show(items):
            return ", ".join(items[:6]) + (f" and {len(items) - 6} more" if len(items) > 6 else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {show(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {show(unexpected)}")
        if wrong:
            parts.append(f"wrong shapes: {show(wrong)}")
        raise ModelFileError(f"{what} does not match its network; " + "; ".join(parts))


def format_card(card: dict, method: str | None = None) -> str:
    """The card as readable lines for ``gan-trainer inspect``; ``method``: the method as a user
    knows it (``trainer.api.method_label``), shown with the card's own where they differ."""
    if card.get("kind") in ("evaluator", "segmenter"):
        return format_helper_card(card)
    lines = []
    for key in ("method", "task", "image_size", "channels", "direction", "directions", "domains", "classes", "preset"):
        if key in card and card[key] not in (None, "", []):
            value = f"{method} (the card says {card[key]})" if key == "method" and method not in (None, card[key]) \
                else card[key]
            lines.append(f"{key:12s} {value}")
    for name, net in card.get("nets", {}).items():
        lines.append(f"{'net ' + name:12s} {net['name']}({', '.join(f'{k}={v}' for k, v in net['args'].items())})")
    for section in ("training", "metrics", "inference"):
        if card.get(section):
            lines.append(f"{section}:")
            lines += [f"  {k:22s} {v}" for k, v in card[section].items()]
    if card.get("eval"):
        lines.append(f"eval ({card['eval'].get('data', '')}, {card['eval'].get('date', '')}):")
        lines += [f"  {k:34s} {v:.4f}" if isinstance(v, float) else f"  {k:34s} {v}"
                  for k, v in flatten(card["eval"].get("metrics", {})).items()]
    return "\n".join(lines)


def format_helper_card(card: dict) -> str:
    """An evaluator's or object segmenter's card: what it reads, how it was trained, its held-out
    scores."""
    net = card.get("net", {})
    lines = [f"{'kind':12s} {card.get('kind')} of {card.get('dataset', '?')}"]
    for key in ("notes", "input_size", "width", "stored_dtype"):
        if key in card:
            lines.append(f"{key:12s} {card[key]}")
    if net.get("heads"):
        lines.append(f"{'heads':12s} " + ", ".join(f"{k}({v})" for k, v in net["heads"].items()))
    lines += [f"{'net.' + k:12s} {v}" for k, v in net.items() if k != "heads" and not isinstance(v, (dict, list))]
    for section in ("trained", "training", "held_out", "held_out_nuisance"):
        if card.get(section):
            lines.append(f"{section}:")
            lines += [f"  {k:22s} {v:.4f}" if isinstance(v, float) and section.startswith("held_out")
                      else f"  {k:22s} {v}"
                      for k, v in card[section].items()]
    return "\n".join(lines)


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested metrics as one level: ``{"AtoB": {"l1": x}}`` -> ``{"AtoB.l1": x}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
