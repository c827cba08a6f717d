# The descriptor says what the entity is (metadata.description).
package plinth.checks.description

import rego.v1

pass(f) := f.descriptor.description
