# The model card has every required section (the same list as the governance gate model_card).
package plinth.checks.model_card_complete

import rego.v1

required := ["intended use", "training data", "metrics", "limitations", "ethical considerations"]

missing(f) := [s | s := required[_]; not s in f.model_card.sections]

pass(f) if {
	f.model_card.present
	count(missing(f)) == 0
}

pass(f) := false if not f.model_card.present

pass(f) := false if {
	f.model_card.present
	count(missing(f)) > 0
}
