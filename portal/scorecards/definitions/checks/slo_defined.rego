# At least one SLO objective is declared (portal/slo reads the OpenSLO file the plinth.dev/openslo
# annotation names). `slo` is null for an entity without SLOs, so this fails closed.
package plinth.checks.slo_defined

import rego.v1

defined(f) if f.slo.defined > 0

pass(f) if defined(f)

pass(f) := false if not defined(f)
