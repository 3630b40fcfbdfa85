"""`pgguard doctor` in privilege mode: the findings privilege mode contributes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from privhelp import Platform, make_platform

from pgguard.doctor import doctor


@pytest.fixture
def platform(pg_server: Any, make_db: Any) -> Iterator[Platform]:
    p = make_platform(pg_server, make_db)
    p.install()
    yield p
    p.close()


def _ids(report: Any) -> dict[str, str]:
    return {f.id: f.severity for f in report.findings}


def test_doctor_privilege_mode_findings(platform: Platform) -> None:
    own = platform.connect("owner")
    ids = _ids(doctor(own))
    assert ids.get("privileges.platform_operations") == "info"
    assert ids.get("privileges.connected_as_database_owner") == "medium"
    assert ids.get("privileges.index_function") == "low"  # tenants_norm calls public.norm
    if platform.server.major >= 16:
        # the installing CREATEROLE credential keeps ADMIN on pgguard_owner
        assert ids.get("privileges.owner_takeover") == "medium"
    assert "privileges.app_takeover" not in ids and "privileges.ownership_drift" not in ids
    admin = platform.admin()
    admin.execute(f'GRANT pgguard_owner TO "{platform.app}"')
    admin.execute(f'ALTER TABLE billing.invoices OWNER TO "{platform.owner}"')
    report = doctor(platform.connect("app"))
    ids = _ids(report)
    assert ids.get("privileges.app_takeover") == "high"
    assert ids.get("privileges.ownership_drift") == "high"
    assert report.open_high
    admin.execute(f'REVOKE pgguard_owner FROM "{platform.app}"')
