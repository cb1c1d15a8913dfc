"""Figures the real-guest suite reports (never asserts): `systemd-analyze blame` spans, ratios,
and the JSON files next to build/guest-report.json that carry them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .image import REPO

# systemd's time spans as blame prints them: "1min 2.345s", "12.817s", "845ms", "93us"
_UNITS = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_PART = re.compile(r"^(\d+(?:\.\d+)?)(h|min|ms|us|µs|s)$")


def span_seconds(text: str) -> float | None:
    """Seconds of a blame line's span ("1min 2.345s unit" -> 62.345), None if unreadable."""
    total, seen = 0.0, False
    for word in text.split():
        m = _PART.match(word)
        if m is None:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        seen = True
    return total if seen else None


def ratio(slow: float | None, fast: float | None) -> float | None:
    if slow is None or fast is None or fast <= 0:
        return None
    return round(slow / fast, 1)


def report_dir() -> Path:
    default = REPO / "build" / "guest-report.json"
    return Path(os.environ.get("FWCFG_GUEST_REPORT", str(default))).parent


def write_report(name: str, doc: dict[str, Any]) -> Path:
    """Writes `doc` as build/<name> (next to the boot report); returns the path."""
    path = report_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
