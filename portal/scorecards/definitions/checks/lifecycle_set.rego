# The lifecycle is one the portal knows.
package plinth.checks.lifecycle_set

import rego.v1

known := {"experimental", "production", "deprecated"}

pass(f) if f.lifecycle in known

pass(f) := false if not f.lifecycle in known
