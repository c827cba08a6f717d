# No unresolved SEV1 incident links the entity (the `incidents` fact, portal/incidents). A scorecard may
# use it with `reads: [incidents.open_sev1]`; a missing fact fails closed.
package plinth.checks.no_open_sev1_incident

import rego.v1

ok(f) if f.incidents.open_sev1 == 0

pass(f) if ok(f)

pass(f) := false if not ok(f)
