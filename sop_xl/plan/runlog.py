"""Run bookkeeping: who ran what, when, for how long — the Log table's rows."""
from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database in some containers
        return "unknown"


def log_row(step: str, status: str, seconds: float, message: str) -> list[Any]:
    return [datetime.now().strftime("%Y-%m-%d %H:%M:%S"), current_user(), step, status, round(seconds, 2),
            message[:500]]
