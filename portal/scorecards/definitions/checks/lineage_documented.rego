# Upstream datasets are declared (dependsOn or lineage) and each is documented (has a description).
package plinth.checks.lineage_documented

import rego.v1

ok(f) if {
	f.lineage.upstream_datasets > 0
	f.lineage.documented == f.lineage.upstream_datasets
}

pass(f) if ok(f)

pass(f) := false if not ok(f)
