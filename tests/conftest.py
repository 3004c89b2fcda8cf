import os

import pytest


def pytest_configure(config):
    # In CI LibreOffice must be there: its tests may not quietly skip.
    if os.environ.get("SOP_XL_REQUIRE_LIBREOFFICE") == "1":
        from sop_xl import libreoffice
        if not libreoffice.available():
            raise pytest.UsageError("SOP_XL_REQUIRE_LIBREOFFICE=1 but LibreOffice (soffice + python3-uno) "
                                    "is not usable")
