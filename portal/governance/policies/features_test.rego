package plinth.gates.features_test

import data.plinth.gates.features
import rego.v1

test_available_features_pass if {
	results := features.results({"features": [{"ref": "featureset:default/f", "exists": true, "deprecated": false}]})
	count([r | some r in results; r.pass == false]) == 0
}

test_deprecated_feature_fails if {
	some r in features.results({"features": [{"ref": "featureset:default/old", "exists": true, "deprecated": true}]})
	r.rule == "feature:featureset:default/old"
	r.pass == false
}

test_missing_feature_fails if {
	some r in features.results({"features": [{"ref": "featureset:default/none", "exists": false, "deprecated": false}]})
	r.pass == false
}

test_feature_sets_are_counted_in_the_singular_or_plural if {
	f := {"ref": "featureset:default/f", "exists": true, "deprecated": false}
	some one in features.results({"features": [f]})
	one.rule == "features-listed"
	one.message == "1 feature set consumed (spec.consumesFeatures)"
	some two in features.results({"features": [f, f]})
	two.rule == "features-listed"
	two.message == "2 feature sets consumed (spec.consumesFeatures)"
}
