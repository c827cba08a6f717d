package plinth.gates.downstream_impact_test

import data.plinth.gates.downstream_impact
import rego.v1

nothing := {
	"computed": true, "hops": 10, "total": 0, "total_label": "0 downstream assets",
	"by_kind": [], "critical": [], "private": [], "hidden": [],
}

dev_only := object.union(nothing, {"total": 2, "total_label": "2 downstream assets", "by_kind": [
	{"kind": "model", "count": 1, "label": "1 model"},
	{"kind": "pipeline", "count": 1, "label": "1 pipeline"},
]})

production := object.union(dev_only, {"critical": [
	{"ref": "model:default/fraud-detector", "kind": "model", "reason": "production model", "team": "fraud-ml"},
]})

hidden := object.union(dev_only, {"hidden": [{"reason": "production model", "count": 1, "label": "1 production model"}]})

private := object.union(dev_only, {"private": [{"reason": "live deployment", "count": 2, "label": "2 private live deployments"}]})

failed(results) := [r | some r in results; r.pass == false]

blocking(results) := [r | some r in failed(results); object.get(r, "severity", "block") == "block"]

test_nothing_downstream_passes if {
	results := downstream_impact.results({"impact": nothing})
	count(failed(results)) == 0
}

test_dev_dependants_only_warn if {
	results := downstream_impact.results({"impact": dev_only})
	count(blocking(results)) == 0
	some r in failed(results)
	r.rule == "downstream-dependants"
	r.severity == "warn"
	r.message == "2 downstream assets depend on the target: 1 model, 1 pipeline; their owners are notified"
}

test_production_model_blocks_and_is_named if {
	results := downstream_impact.results({"impact": production})
	some r in blocking(results)
	r.rule == "critical:model:default/fraud-detector"
	r.message == "production model model:default/fraud-detector (team fraud-ml) depends on the target: it would break"
}

test_hidden_production_model_blocks_without_a_name if {
	results := downstream_impact.results({"impact": hidden})
	some r in blocking(results)
	r.rule == "hidden:production-model"
	r.message == "1 production model you cannot see depends on the target: it would break"
}

test_private_live_deployments_block_unnamed if {
	results := downstream_impact.results({"impact": private})
	some r in blocking(results)
	r.rule == "private:live-deployment"
	r.message == "2 private live deployments (private to a team: not named here, see the impact list if you may see it) depend on the target: it would break"
}

test_each_critical_asset_has_its_own_rule_and_no_summary if {
	results := downstream_impact.results({"impact": object.union(production, {"hidden": hidden.hidden})})
	count(blocking(results)) == 2
	count([r | some r in results; r.rule == "no-critical-dependants"]) == 0
}

test_nothing_critical_is_said if {
	some r in downstream_impact.results({"impact": dev_only})
	r.rule == "no-critical-dependants"
	r.pass == true
}

test_missing_impact_fails_closed if {
	some r in blocking(downstream_impact.results({}))
	r.rule == "impact-computed"
}

test_uncomputed_impact_fails_closed if {
	some r in blocking(downstream_impact.results({"impact": {"computed": false}}))
	r.rule == "impact-computed"
}
