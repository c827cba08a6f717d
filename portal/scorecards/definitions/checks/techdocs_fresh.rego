# TechDocs were (re)built in the last 180 days.
package plinth.checks.techdocs_fresh

import rego.v1

fresh(f) if {
	f.techdocs.present
	f.techdocs.age_days != null
	f.techdocs.age_days <= 180
}

pass(f) if fresh(f)

pass(f) := false if not fresh(f)
