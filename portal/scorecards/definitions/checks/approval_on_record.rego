# Every version serving live has an approval on record (governance): no open compliance drift.
package plinth.checks.approval_on_record

import rego.v1

ok(f) if {
	f.approval.serving > 0
	f.approval.unapproved == 0
}

pass(f) if ok(f)

pass(f) := false if not ok(f)
