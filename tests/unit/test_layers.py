"""The layers of docs/architecture.md hold: no module imports a layer above its own (at module
level or inside a function; type-only imports excepted), and the package ships no dev-only code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "footprint"

#: module prefix -> the footprint modules it must never import (higher layers).
HIGHER = ("footprint.reporting", "footprint.cli", "footprint.integrations", "footprint.demo")
FORBIDDEN = {
    "footprint.record": (
        *HIGHER,
        "footprint.run",
        "footprint.tracker",
        "footprint.store",
        "footprint.sampler",
        "footprint.ranking",
        "footprint.frames",
    ),
    "footprint.sensors": (*HIGHER, "footprint.run", "footprint.tracker", "footprint.store"),
    "footprint.sampler": (*HIGHER, "footprint.run", "footprint.tracker", "footprint.store"),
    "footprint.runtime": (*HIGHER, "footprint.run", "footprint.tracker", "footprint.sensors"),
    "footprint.options": (*HIGHER, "footprint.run", "footprint.tracker"),
    "footprint.run": (*HIGHER, "footprint.tracker", "footprint.ranking", "footprint.frames"),
    "footprint.tracker": (*HIGHER, "footprint.ranking", "footprint.frames"),
    "footprint.store": (*HIGHER, "footprint.run", "footprint.tracker", "footprint.sensors"),
    "footprint.carbon": (*HIGHER, "footprint.run", "footprint.tracker", "footprint.sensors"),
    "footprint.stats": (*HIGHER, "footprint.record", "footprint.store"),
    "footprint.attribution": (*HIGHER, "footprint.store", "footprint.run"),
    "footprint.ranking": (*HIGHER, "footprint.run", "footprint.tracker", "footprint.sensors"),
    "footprint.frames": (*HIGHER, "footprint.run", "footprint.tracker"),
    # who measures and how parts meet: below the run, above the record and the store
    "footprint.jobs": (
        *HIGHER,
        "footprint.run",
        "footprint.tracker",
        "footprint.sensors",
        "footprint.sampler",
        "footprint.ranking",
        "footprint.frames",
    ),
    # the framework callbacks sit on the public API: never on the CLI or the demo
    "footprint.integrations": ("footprint.cli", "footprint.demo"),
}

#: the ML frameworks: only their own integration module imports each (behind an extra)
FRAMEWORKS = {
    "transformers": "footprint.integrations.transformers",
    "huggingface_hub": "footprint.integrations.transformers",
    "lightning": "footprint.integrations.lightning",
    "pytorch_lightning": "footprint.integrations.lightning",
    "keras": "footprint.integrations.keras",
    "mlflow": "footprint.integrations.mlflow",
    "prometheus_client": "footprint.integrations.prometheus",
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # type-only imports (if TYPE_CHECKING:) do not run: not counted
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_import_from_a_higher_layer(path):
    name = module_name(path)
    rules = [
        bad for prefix, bad in FORBIDDEN.items() if name == prefix or name.startswith(prefix + ".")
    ]
    if not rules:
        return
    wrong = sorted(
        imp for imp in imports(path) for bad in rules[0] if imp == bad or imp.startswith(bad + ".")
    )
    assert not wrong, f"{name} imports a higher layer: {wrong}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_a_framework_is_imported_only_by_its_integration(path):
    name = module_name(path)
    found = {imp.split(".")[0] for imp in imports(path)}
    wrong = sorted(f for f in found & set(FRAMEWORKS) if FRAMEWORKS[f] != name)
    assert not wrong, f"{name} imports {wrong}: only their integration module may"


def test_the_rules_catch_a_backwards_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from footprint.reporting import report\n")
    assert "footprint.reporting" in imports(bad)


def test_no_dev_only_code_in_the_package():
    names = {p.name for p in MODULES}
    assert not names & {"_synthetic.py", "build_index.py"}
    for path in MODULES:
        text = path.read_text(encoding="utf-8")
        assert "argparse" not in text, f"{path} parses its own command line: scripts/ or cli/"


def test_slow_modules_skipped_at_collection_are_slow_as_a_whole():
    from conftest import SLOW_MODULES

    for name in SLOW_MODULES:
        (path,) = (ROOT / "tests").rglob(name)
        text = path.read_text(encoding="utf-8")
        assert "\npytestmark = pytest.mark.slow" in text, name
