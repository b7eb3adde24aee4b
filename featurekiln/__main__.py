"""``python -m featurekiln`` is ``kiln``."""

from __future__ import annotations

from featurekiln.cli import main

main()
