package plinth.gates.training_data_test

import data.plinth.gates.training_data
import rego.v1

pii_data(approved) := {"datasets": [{"ref": "dataset:default/d", "classification": "pii", "pii": true, "pii_use_approved": approved}]}

test_pii_without_approval_fails if {
	some r in training_data.results(pii_data(false))
	r.rule == "pii-approved:dataset:default/d"
	r.pass == false
}

test_pii_with_approval_passes if {
	results := training_data.results(pii_data(true))
	count([r | some r in results; r.pass == false]) == 0
}

test_unclassified_dataset_fails if {
	some r in training_data.results({"datasets": [{"ref": "dataset:default/x", "classification": "", "pii": false}]})
	r.rule == "classified:dataset:default/x"
	r.pass == false
}

test_no_datasets_fails if {
	some r in training_data.results({"datasets": []})
	r.rule == "datasets-declared"
	r.pass == false
}

test_one_dataset_is_named_in_the_singular if {
	some r in training_data.results(pii_data(true))
	r.rule == "datasets-declared"
	r.message == "1 training dataset declared in spec.trainedOn"
}

test_two_datasets_are_named_in_the_plural if {
	d := {"ref": "dataset:default/d", "classification": "public", "pii": false}
	some r in training_data.results({"datasets": [d, object.union(d, {"ref": "dataset:default/e"})]})
	r.rule == "datasets-declared"
	r.message == "2 training datasets declared in spec.trainedOn"
}
