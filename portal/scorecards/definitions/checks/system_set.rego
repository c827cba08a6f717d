# The entity belongs to a system (spec.system).
package plinth.checks.system_set

import rego.v1

pass(f) := f.descriptor.system
