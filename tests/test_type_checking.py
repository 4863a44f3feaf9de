"""The type checker's configuration (pyproject.toml ``[tool.mypy]``) keeps up with the code it checks."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def followed_aws_cdk_modules() -> set[str]:
    """The aws_cdk modules mypy follows (every other one is skipped, its types Any)."""
    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    return {
        module
        for override in overrides
        if override.get("follow_imports") == "normal"
        for module in override["module"]
        if module.split(".")[0] == "aws_cdk"
    }


def imported_aws_cdk_modules(package: Path) -> dict[str, str]:
    """Each aws_cdk module imported under ``package``, with one file that imports it."""
    imported: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "aws_cdk":
                names = [f"aws_cdk.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] == "aws_cdk":
                    imported.setdefault(name, str(path.relative_to(ROOT)))
    return imported


def test_mypy_follows_every_aws_cdk_module_the_tier_imports():
    imported = imported_aws_cdk_modules(ROOT / "broker_tier")
    assert "aws_cdk.aws_elasticache" in imported  # the walk sees the constructs' imports
    missing = {module: path for module, path in imported.items() if module not in followed_aws_cdk_modules()}
    assert not missing, f"add these to the follow_imports = 'normal' override of pyproject.toml: {missing}"
