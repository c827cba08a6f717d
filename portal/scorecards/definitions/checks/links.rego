# The descriptor links at least one page (a runbook, a dashboard, the repository).
package plinth.checks.links

import rego.v1

pass(f) := f.descriptor.links > 0
