"""`python -m pgguard` is the `pgguard` command."""

from __future__ import annotations

from .cli import main

main()
