"""The package boundary: the local host and the client never import each other.

``openwop_devhost`` stands alone (starlette, uvicorn and the standard library), so the client's
tests exercise the client against an independent host over sockets, never through shared code.
The check reads each module's imports from its syntax tree (``import``, ``from ... import`` and
``importlib.import_module("...")`` with a literal name), so it needs nothing to be importable.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT_PACKAGES = ("openwop_core", "openwop_airflow", "openwop_prefect")


def _imported_modules(path: Path) -> set[str]:
    """Absolute module names ``path`` imports (relative imports stay inside its own package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in sorted(_imported_modules(path)):
            if name.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_devhost_imports_nothing_from_the_client_or_the_integrations() -> None:
    assert _violations("openwop_devhost", CLIENT_PACKAGES) == []


@pytest.mark.parametrize("package", CLIENT_PACKAGES)
def test_client_and_integrations_import_nothing_from_the_devhost(package: str) -> None:
    assert _violations(package, ("openwop_devhost",)) == []


def test_the_check_sees_imports(tmp_path: Path) -> None:
    """The checker itself: each import form it must catch is caught."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import openwop_core\nfrom openwop_prefect.flows import x\nimport importlib\n"
        "importlib.import_module('openwop_airflow.hooks')\nfrom . import sibling\n",
        encoding="utf-8",
    )
    assert _imported_modules(probe) == {"openwop_core", "openwop_prefect.flows", "importlib", "openwop_airflow.hooks"}
