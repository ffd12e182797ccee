"""The package as pip installs it: every subpackage listed, data files included, CLI entry point."""

from __future__ import annotations

import tomllib

from oracle import ROOT


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(("archlang", *p.parent.relative_to(ROOT / "archlang").parts))
             for p in (ROOT / "archlang").rglob("__init__.py") if "__pycache__" not in p.parts}
    assert found | {"archlang.passes"} == listed
    assert config["package-dir"] == {"archlang.passes": "passes"}
    data = config["package-data"]
    assert "grammar.lark" in data["archlang"] and "static/*.js" in data["archlang.viz"]


def test_console_script_points_at_main():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"archlang": "archlang.cli:main"}
    from archlang.cli import main

    assert callable(main)
