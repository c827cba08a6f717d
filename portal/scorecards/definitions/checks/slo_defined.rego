# At least one SLO is declared. Plinth has no SLO facts yet: `slo` is null, so this fails ("no SLO defined").
package plinth.checks.slo_defined

import rego.v1

defined(f) if count(object.get(f, "slo", null).objectives) > 0

pass(f) if defined(f)

pass(f) := false if not defined(f)
