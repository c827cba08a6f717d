package plinth.gates.metric_thresholds_test

import data.plinth.gates.metric_thresholds
import rego.v1

test_tier1_auc_above_threshold_passes if {
	[r] := metric_thresholds.results({"target": {"tier_key": "1"}, "candidate": {"metrics": {"auc": 0.93}}})
	r.pass == true
}

test_tier1_auc_below_threshold_fails if {
	[r] := metric_thresholds.results({"target": {"tier_key": "1"}, "candidate": {"metrics": {"auc": 0.79}}})
	r.pass == false
	contains(r.message, "below")
}

test_tier3_is_more_lenient if {
	[r] := metric_thresholds.results({"target": {"tier_key": "3"}, "candidate": {"metrics": {"auc": 0.72}}})
	r.pass == true
}

test_missing_metric_fails if {
	[r] := metric_thresholds.results({"target": {"tier_key": "2"}, "candidate": {"metrics": {}}})
	r.pass == false
	contains(r.message, "missing")
}
