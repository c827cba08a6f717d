"""`client.feedback` against the live server: a data scientist says a model page was not useful, the
owning team's maintainer plans it, others vote, and the roadmap ranks it."""

from __future__ import annotations

import pytest
from plinth_sdk import Client, errors
from plinth_sdk.models import FeedbackItem

pytestmark = pytest.mark.django_db(transaction=True)


def test_feedback_round_trip(portal):
    with Client(portal.url, portal.token("dan")) as dan, Client(portal.url, portal.token("alice")) as alice:
        item = dan.feedback.useful("entity", "model:default/fraud-detector", False, comment="No *threshold* documented")
        assert isinstance(item, FeedbackItem) and item.owner_team == "fraud-ml" and item.status == "open"
        again = dan.feedback.useful("entity", "model:default/fraud-detector", False, comment="Still none")
        assert again.id == item.id and again.comment == "Still none"
        with pytest.raises(errors.APIError) as refused:
            dan.feedback.set_status(item.id, "planned", answer="mine")
        assert refused.value.status == 403
        planned = alice.feedback.set_status(item.id, "planned", answer="Adding it to the card")
        assert (planned.status, planned.answer) == ("planned", "Adding it to the card")
        assert alice.feedback.vote(item.id) is True and alice.feedback.vote(item.id, False) is False
        idea = dan.feedback.idea("Dark mode", client_key="sdk-1")
        assert dan.feedback.idea("Dark mode", client_key="sdk-1").id == idea.id
        assert alice.feedback.vote(idea.id, True) is True
        assert [i.id for i in dan.feedback.list(mine=True)] == [idea.id, item.id]
        roadmap = dan.feedback.roadmap()
        assert [r.item.id for r in roadmap][:1] == [idea.id] and roadmap[0].votes == 1
        with pytest.raises(errors.NotFoundError):
            dan.feedback.useful("entity", "model:default/no-such-model", True)
        with pytest.raises(errors.ValidationError):
            dan.feedback.useful("planet", "x", True)
