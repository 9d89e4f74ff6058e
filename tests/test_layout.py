"""Tests mirror the product: every package ``pyproject.toml`` ships has its ``tests/<package>/``, and the
other folders are kinds of test that cross packages (README: "Where tests live")."""

from __future__ import annotations

from tests.test_import_graph import ROOT, product_packages_and_modules


def test_every_product_package_has_its_test_folder() -> None:
    packages, _ = product_packages_and_modules()
    missing = [p for p in packages if not (ROOT / "tests" / p / "__init__.py").is_file()]
    assert not missing, f"no tests/<package>/ for {missing}"


def test_no_test_folder_is_named_for_a_layer_that_is_not_a_package_or_a_kind_of_test() -> None:
    """``tests/unit/`` held what belonged to packages; folders are packages or cross-package kinds."""
    packages, _ = product_packages_and_modules()
    kinds = {"integration", "reliability", "browser", "cameras", "ops", "deploy"}
    folders = {p.name for p in (ROOT / "tests").iterdir() if (p / "__init__.py").is_file()}
    assert folders - set(packages) - kinds == set()


def test_the_readme_says_where_tests_live() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "Where tests live" in readme and "tests/<package>/" in readme
