"""The studio reaches the engine through one door: ``trainer.api`` (and ``trainer.rundir``, the run
directory both sides read). Every import statement of every studio module, function-local ones
included, is read from its source (nothing is imported to check it)."""
import ast
from pathlib import Path

from tests.conftest import ROOT

ALLOWED = {"trainer.api", "trainer.rundir"}


def engine_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of each engine module ``path`` imports: ``import trainer.x``, ``from
    trainer.x import y`` and ``from trainer import x`` (x a module or a name of the package)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "trainer"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "trainer":
                found += [(node.lineno, f"trainer.{a.name}") for a in node.names]
            elif node.module.split(".")[0] == "trainer":
                found.append((node.lineno, node.module))
    return found


def test_studio_imports_only_the_api_and_the_run_directory():
    modules = sorted((Path(ROOT) / "studio").rglob("*.py"))
    assert len(modules) > 20  # the whole package was read
    bad = [f"{p.relative_to(ROOT)}:{line} imports {name}" for p in modules
           for line, name in engine_imports(p) if name not in ALLOWED]
    assert not bad, "the studio imports the engine only through trainer.api and trainer.rundir:\n" + "\n".join(bad)


def test_the_check_sees_every_form_of_import(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import trainer.config\nfrom trainer import inference, api\n"
                      "def f():\n    from trainer.data.imageio import open_image\n    import trainer.rundir\n"
                      "from . import sibling\n")
    assert [name for _, name in engine_imports(source)] == [
        "trainer.config", "trainer.inference", "trainer.api", "trainer.data.imageio", "trainer.rundir"]
