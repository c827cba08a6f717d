# Unit tests of the model card gate: `python manage.py policy test`.
# Tests call `results(…)` with a fixture (regopy cannot run `with input as`).
package plinth.gates.model_card_test

import data.plinth.gates.model_card
import rego.v1

complete := {"model_card": {"present": true, "path": "model-card.md", "sections": [
	"intended use", "training data", "metrics", "limitations", "ethical considerations",
]}}

test_complete_card_passes if {
	results := model_card.results(complete)
	count(results) == 6
	count([r | some r in results; r.pass == false]) == 0
}

test_missing_card_fails if {
	some r in model_card.results({"model_card": {"present": false, "sections": []}})
	r.rule == "model-card-present"
	r.pass == false
}

test_missing_section_is_named if {
	some r in model_card.results({"model_card": {"present": true, "path": "m.md", "sections": ["intended use"]}})
	r.rule == "section-limitations"
	r.pass == false
	contains(r.message, "limitations")
}
