package plinth.gates.champion_regression_test

import data.plinth.gates.champion_regression
import rego.v1

pair(candidate, champion) := {
	"candidate": {"version": "3", "metrics": {"auc": candidate}},
	"champion": {"version": "2", "metrics": {"auc": champion}},
}

test_better_candidate_passes if {
	[r] := champion_regression.results(pair(0.93, 0.91))
	r.pass == true
}

test_within_tolerance_passes if {
	[r] := champion_regression.results(pair(0.905, 0.91))
	r.pass == true
}

test_worse_beyond_tolerance_fails if {
	[r] := champion_regression.results(pair(0.85, 0.91))
	r.pass == false
	contains(r.message, "worse")
}

test_no_champion_passes if {
	[r] := champion_regression.results({"candidate": {"version": "1", "metrics": {"auc": 0.5}}, "champion": null})
	r.pass == true
}

test_candidate_without_the_metric_fails if {
	[r] := champion_regression.results({"candidate": {"version": "3", "metrics": {}}, "champion": {"version": "2", "metrics": {"auc": 0.9}}})
	r.pass == false
	contains(r.message, "has no AUC")
}

test_champion_without_the_metric_passes if {
	[r] := champion_regression.results({"candidate": {"version": "3", "metrics": {"auc": 0.5}}, "champion": {"version": "2", "metrics": {}}})
	r.pass == true
	contains(r.message, "nothing to compare")
}
