"""Packages of ``src/`` import one way: each layer imports only layers below it, so there is no cycle and the
plain parts (models, data) never depend on the training machinery."""

import ast
from pathlib import Path

from src.config.resolvers import PROJECT_ROOT

SRC = PROJECT_ROOT / "src"
LAYERS = [
    {"errors", "atomic_write", "tasks"},  # no project imports at all
    {"training", "stop_and_resume"},  # what both engines share: the step's loss and metrics; interrupts, checkpoints
    {"models", "datamodules"},  # plain nn.Modules; LightningDataModules
    {"lit_modules", "callbacks"},  # the LightningModule and Lightning callbacks
    {"utils"},  # small helpers: console, figures, predictions
    {"config"},  # the config built into objects
    {"sweeps", "report"},  # Optuna trials and GPU leases; sweep reports
    {"engines"},  # Lightning and the hand-written loop
    {"checks"},  # every start-up check, of whatever the layers below build
    {"runs"},  # run records, resuming and reuse, a finished run rebuilt
]


def layer_of(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def project_imports(path: Path) -> set[str]:
    """The top-level packages of ``src`` that a file imports (``src.training.x`` -> ``training``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {name.split(".")[1] for name in names if name.startswith("src.")}
    return found


def package_of(path: Path) -> str:
    relative = path.relative_to(SRC).parts
    return relative[0] if len(relative) > 1 else path.stem


def test_every_package_of_src_belongs_to_a_layer() -> None:
    packages = {package_of(p) for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC}
    assert packages <= set().union(*LAYERS), packages - set().union(*LAYERS)


def test_packages_import_only_the_layers_below_them() -> None:
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        if path.parent == SRC and path.name == "__init__.py":
            continue
        own = package_of(path)
        for imported in project_imports(path) - {own}:
            if layer_of(imported) >= layer_of(own):
                upward.append(f"{path.relative_to(PROJECT_ROOT)} imports src.{imported}")
    assert not upward, "\n".join(upward)
