"""The request page as a reviewer meets it: one comment box, linked references and follow-up requests,
warnings that say they do not block, deltas coloured by direction, the production confirmation, and
forms refused before anything is typed."""

from __future__ import annotations

import re

import pytest

from portal.governance import selectors, services
from portal.governance.models import ApprovalRequest, Comment, Decision
from portal.governance.templatetags.governance_tags import linked_refs

from .test_api_and_pages import BODY, post

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitted(fraud_versions, users, as_user, run_outbox):
    response = post(as_user(users["alice"]), "/api/v1/approval-requests", BODY)
    assert response.status_code == 201, response.content
    run_outbox()
    return ApprovalRequest.objects.get(pk=response.json()["id"])


def test_reviewer_page_links_refs_and_follow_ups_and_says_warnings_do_not_block(submitted, users, as_user):
    html = as_user(users["erin"]).get(f"/reviews/requests/{submitted.pk}/").content.decode()
    # The PII warning of the training-data gate: the dataset and the follow-up request are links.
    assert '<a href="/catalog/dataset/default/card-transactions-2025/"><code>dataset:default/card-transactions-2025' in html
    assert ('(<a href="/reviews/new/?action=grant-access&amp;target=dataset%3Adefault%2Fcard-transactions-2025">'
            "request grant-access</a>)") in html
    assert "warning · does not block" in html and 'data-testid="policy-legend"' in html
    # Counts in gate messages agree with their nouns (the fraud detector has one dataset, two feature sets).
    assert "1 training dataset declared in spec.trainedOn" in html and "(s)" not in html
    assert "2 feature sets consumed" in html
    # Lineage items are links to the entities, with their titles.
    lineage = html.split('data-testid="lineage-features"', 1)[1].split("</ul>", 1)[0]
    assert '<a href="/catalog/featureset/default/card-transactions-features/">' in lineage
    # One comment box: the reviewer's is the decision form's; the thread has none of its own.
    assert html.count("<textarea") == 1 and 'name="comment"' in html and "Comment only" in html
    # Tier 1: Approve… opens the confirmation dialog; the plain one-click Approve is not offered.
    assert 'data-open-dialog="approve-dialog"' in html and "Type <strong>fraud-detector</strong> to confirm" in html
    assert not re.search(r'type="submit" name="decision" value="approve" hx-confirm', html)


def test_requester_sees_the_comment_form_and_comment_only_posts_from_the_reviewer_box(submitted, users, as_user):
    alice_html = as_user(users["alice"]).get(f"/reviews/requests/{submitted.pk}/").content.decode()
    assert alice_html.count("<textarea") == 1 and 'name="body"' in alice_html
    erin = as_user(users["erin"])
    response = erin.post(f"/reviews/requests/{submitted.pk}/comment/", {"comment": "Which hold-out set?"})
    assert response.status_code == 302
    assert Comment.objects.get(request=submitted).body == "Which hold-out set?"
    assert not Decision.objects.filter(request=submitted).exists()


def test_metric_deltas_are_judged_by_direction():
    assert selectors.delta_verdict("auc", 0.02) == "better"
    assert selectors.delta_verdict("auc", -0.01) == "worse"
    assert selectors.delta_verdict("val_loss", -0.1) == "better"
    assert selectors.delta_verdict("rmse", 0.3) == "worse"
    assert selectors.delta_verdict("p95_latency_ms", 5) == "worse"
    assert selectors.delta_verdict("precision", 0) == "same"
    assert selectors.delta_verdict("recall", None) is None


def test_metrics_table_colours_deltas(submitted, users, as_user):
    html = as_user(users["erin"]).get(f"/reviews/requests/{submitted.pk}/").content.decode()
    table = html.split('data-testid="metrics"', 1)[1].split("</table>", 1)[0]
    assert 'class="num delta-better" data-verdict="better">+0.02' in table


def test_a_metric_row_shows_its_values_at_one_precision(submitted, users, as_user):
    """0.93 beside 0.8744 reads 0.9300 and 0.8744 (and the delta at the same places), not "0.93"."""
    from catalog.models import ModelVersion

    ModelVersion.objects.filter(entity=submitted.entity, version="2").update(metrics={"auc": 0.8744, "latency_ms": 12})
    ModelVersion.objects.filter(entity=submitted.entity, version="3").update(metrics={"auc": 0.93, "latency_ms": 9})
    html = as_user(users["erin"]).get(f"/reviews/requests/{submitted.pk}/").content.decode()
    table = html.split('data-testid="metrics"', 1)[1].split("</table>", 1)[0]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r'<td class="num[^"]*"[^>]*>(.*?)</td>', table)]
    assert cells[:3] == ["0.9300", "0.8744", "+0.0556 ▲better"], cells
    assert cells[3:5] == ["9", "12"], "whole numbers stay whole"
    assert selectors._decimals(0.93 - 0.05, 0.91) == 2, "float noise is not precision"


def test_confirmation_is_asked_for_tier_1_and_production_changes_only(submitted):
    assert services.confirmation_reason(submitted) == "the model is risk tier 1"
    submitted.risk_tier = 2
    assert services.confirmation_reason(submitted) == "it moves the production alias champion"
    submitted.change = {"alias": "shadow", "to": "3"}
    assert services.confirmation_reason(submitted) is None
    assert services.confirmation_problem(submitted, "approve", "") is None
    submitted.change = {"lifecycle": {"from": "production", "to": "deprecated"}}
    assert "production" in services.confirmation_reason(submitted)
    assert services.confirmation_problem(submitted, "reject", None) is None  # only approvals


def test_linked_refs_escapes_everything_else():
    html = linked_refs('<script>x</script> model:default/a-b needs (request grant-access) & "more"')
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; &quot;more&quot;" in html
    assert '<a href="/catalog/model/default/a-b/"><code>model:default/a-b</code></a>' in html
    assert linked_refs("no reference (request grant-access)") == "no reference (request grant-access)"


def test_promotion_form_refuses_a_reviewer_before_typing(fraud_versions, users, as_user):
    url = "/reviews/new/?action=promote-model-version&target=model:default/fraud-detector"
    response = as_user(users["frank"]).get(url)  # reviewer in fraud-ml: may review, not request
    html = response.content.decode()
    assert response.status_code == 403 and 'data-testid="form-refusal"' in html
    assert "You review such requests once they are submitted." in html
    assert "<textarea" not in html and "Submit for approval" not in html
    assert as_user(users["alice"]).get(url).status_code == 200
    # Posting anyway is refused the same way, and nothing is stored.
    refused = as_user(users["frank"]).post("/reviews/new/", {"action": "promote-model-version",
                                                             "target": "model:default/fraud-detector",
                                                             "version": "3", "alias": "champion"})
    assert refused.status_code == 403 and not ApprovalRequest.objects.exists()


def test_grant_access_form_refuses_someone_without_a_requesting_team(demo_org, users, as_user):
    url = "/reviews/new/?action=grant-access&target=dataset:default/card-transactions-2025"
    response = as_user(users["erin"]).get(url)
    assert response.status_code == 403 and "not a member of a team that may request access" in response.content.decode()
    assert as_user(users["bob"]).get(url).status_code == 200


def test_shipped_gate_tests_count_in_the_singular_and_plural():
    """training_data_test.rego and features_test.rego pin the messages' grammar ("1 training dataset",
    "2 feature sets"); `manage.py policy test` runs them with the others."""
    from portal.governance import policy

    outcomes = [o for o in policy.run_tests() if o.file in {"training_data_test.rego", "features_test.rego"}]
    assert {o.name for o in outcomes} >= {"test_one_dataset_is_named_in_the_singular",
                                          "test_two_datasets_are_named_in_the_plural",
                                          "test_feature_sets_are_counted_in_the_singular_or_plural"}
    assert all(o.passed for o in outcomes), [o for o in outcomes if not o.passed]
