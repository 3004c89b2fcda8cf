import importlib
import os
import warnings

import pytest

# oletools (which sop_xl.workbook.vba imports lazily to read VBA back) builds its pyparsing grammar at
# import time with pyparsing's old camelCase names, and pyparsing 3 warns once per name. Not ours to
# fix, and it would surface in whichever test happened to read VBA first, so import it here with
# exactly those warnings silenced; every other warning stays visible (pyproject.toml turns our own
# deprecations into errors).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", r"'\w+' (argument is )?deprecated", DeprecationWarning, r"oletools\.olevba")
    importlib.import_module("oletools.olevba")


def pytest_configure(config):
    # In CI LibreOffice must be there: its tests may not quietly skip.
    if os.environ.get("SOP_XL_REQUIRE_LIBREOFFICE") == "1":
        from sop_xl import libreoffice
        if not libreoffice.available():
            raise pytest.UsageError("SOP_XL_REQUIRE_LIBREOFFICE=1 but LibreOffice (soffice + python3-uno) "
                                    "is not usable")


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by `-m`
def pytest_collection_modifyitems(config, items):
    # `slow` follows from what a test does, decided here once rather than by hand: a test that drives
    # LibreOffice (marked `libreoffice`) or uses the demo company run end to end (the session fixture
    # demo_workbook, directly or through another fixture) is slow. Tests slow for another reason -- a
    # subprocess that builds a workbook, a property test with many examples, every ribbon macro on the
    # full demo -- carry @pytest.mark.slow themselves. `-m "not slow"` is the quick inner loop; the
    # full suite (python3 dev.py test, .ci/run) still runs everything.
    for item in items:
        if item.get_closest_marker("libreoffice") or "demo_workbook" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def demo_workbook(tmp_path_factory):
    """The demo company, every step run headless (sop-xl demo). Copy it before changing it."""
    from sop_xl.cli import main

    out = tmp_path_factory.mktemp("demo") / "SOP_Demo.xlsm"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out
