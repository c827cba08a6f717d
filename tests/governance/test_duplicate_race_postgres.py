"""Two requests for the same change submitted at once on PostgreSQL (READ COMMITTED): exactly one is
created, the other gets the 409 a sequential duplicate gets. Before, both passed the duplicate check
(neither saw the other's uncommitted row) and both were created."""

import contextlib
import threading

import pytest
from django.db import connections

from portal.governance import services
from portal.governance.models import ApprovalRequest
from tests.governance.test_services import PROMOTE

pytestmark = [pytest.mark.prod_smoke, pytest.mark.usefixtures("postgres_only"),
              pytest.mark.django_db(transaction=True)]


def test_two_concurrent_duplicates_make_one_request_and_one_conflict(fraud_versions, users, monkeypatch):
    # Both submitters meet after their duplicate check: without a lock both pass it before either
    # writes. With the lock the second waits for the first's commit, the barrier times out and the
    # first goes on alone.
    barrier = threading.Barrier(2, timeout=3)
    original = services._refuse_duplicate

    def refuse_then_meet(*args, **kwargs):
        original(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    monkeypatch.setattr(services, "_refuse_duplicate", refuse_then_meet)
    made, refused, errors = [], [], []

    def submit(user) -> None:
        try:
            made.append(services.request_create(actor=user, **PROMOTE).pk)
        except services.Conflict as exc:
            refused.append(exc)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(users[name],)) for name in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(made) == 1, f"{len(made)} requests created for the same change"
    assert ApprovalRequest.objects.filter(target_ref="model:default/fraud-detector").count() == 1
    assert len(refused) == 1
    assert refused[0].extra["request_id"] == made[0]
    assert "for the same change is already open" in refused[0].message
