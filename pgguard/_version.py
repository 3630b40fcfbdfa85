"""The package version, also recorded in pgguard.installation by `pgguard install`."""

from __future__ import annotations

__version__ = "0.1.0"
