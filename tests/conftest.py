import os

import pytest


def pytest_configure(config):
    # In CI LibreOffice must be there: its tests may not quietly skip.
    if os.environ.get("SOP_XL_REQUIRE_LIBREOFFICE") == "1":
        from sop_xl import libreoffice
        if not libreoffice.available():
            raise pytest.UsageError("SOP_XL_REQUIRE_LIBREOFFICE=1 but LibreOffice (soffice + python3-uno) "
                                    "is not usable")


@pytest.fixture(scope="session")
def demo_workbook(tmp_path_factory):
    """The demo company, every step run headless (sop-xl demo). Copy it before changing it."""
    from sop_xl.cli import main

    out = tmp_path_factory.mktemp("demo") / "SOP_Demo.xlsm"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    return out
