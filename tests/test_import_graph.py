"""The import graph of the engine and the studio: no circle, no arrow from a lower layer to a
higher one (issue 27; the studio's door into the engine: test_studio_api_boundary.py).

Every ``import`` and ``from ... import`` in every module of ``trainer`` and ``studio`` is read from
the source (the AST, so function-local imports count too) and resolved to the module it names.
"""
import ast
from pathlib import Path

from tests.conftest import ROOT

# Lowest first. A module belongs to the first layer whose prefixes match its name; it may import
# modules of its own layer or lower ones only (sideways imports within a layer are allowed, but no
# circle anywhere).
LAYERS = [
    ("package", ["trainer"]),  # trainer/__init__.py: a docstring and the version
    ("errors", ["trainer.errors"]),
    ("utilities", ["trainer.device", "trainer.progress", "trainer.modelfile", "trainer.rundir",
                   "trainer.distributed", "trainer.metrics", "trainer.losses", "trainer.latent_density",
                   "trainer.domain_check", "trainer.nets", "trainer.data", "trainer.evaluators",
                   "trainer.images", "trainer.image_pool", "trainer.loss_groups", "trainer.precisions",
                   "trainer.diffaugment", "trainer.region_codes", "trainer.object_segmenter",
                   "trainer.object_colours", "trainer.seeded_dropout"]),
    ("settings and runtimes", ["trainer.config", "trainer.controls", "trainer.translator",
                               "trainer.evaluation", "trainer.importers", "trainer.exporters"]),
    ("methods", ["trainer.methods"]),
    ("registry", ["trainer.registry"]),
    ("jobs", ["trainer.run", "trainer.scoring", "trainer.conversion", "trainer.onnx_export",
              "trainer.inference"]),
    ("door", ["trainer.api", "trainer.cli", "trainer.__main__"]),
    ("studio", ["studio"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from pkg import mod`` counts as ``pkg.mod`` when
    that is a module, else as ``pkg``)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:  # "trainer.nets.unet.UNet" -> the module that holds it
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    # importing a.b.c runs a/__init__ and a/b/__init__ first: those count as imported too, except
    # the packages that hold this module (they ran before it)
    own = set(parents(name)) | {name}
    return {m for t in found for m in (*parents(t), t) if m not in own and m in known}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for pkg in ("trainer", "studio") for p in (ROOT / pkg).rglob("*.py")}
    known = set(paths)
    return {name: imports_of(p, name, known) for name, p in paths.items()}


def layer_of(name: str) -> int:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or (name.startswith(p + ".") and p != "trainer") for p in prefixes):
            return i
    raise AssertionError(f"{name} is in no layer: add it to LAYERS in {__file__}")


def parents(name: str) -> list[str]:
    """A module's enclosing packages: importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def test_every_module_has_a_layer():
    for name in graph():
        layer_of(name)


def test_no_arrow_climbs():
    g = graph()
    upward = sorted(f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
                    for a, targets in g.items() for b in targets
                    if b in g and layer_of(b) > layer_of(a) and b not in parents(a))
    assert not upward, "imports that climb a layer:\n" + "\n".join(upward)


def test_no_import_circle():
    g = {a: {b for b in targets if b not in parents(a)} for a, targets in graph().items()}
    # Tarjan's strongly connected components
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    import sys
    sys.setrecursionlimit(10_000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_checker_sees_function_local_imports(tmp_path):
    """The walker must not miss an import inside a function (the way circles used to be hidden)."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from trainer.config import load\n    import trainer.run\n")
    found = imports_of(src, "trainer.x", {"trainer.config", "trainer.run", "trainer"})
    assert found == {"trainer.config", "trainer.run"}
