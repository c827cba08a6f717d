# TechDocs were built for the entity.
package plinth.checks.techdocs_present

import rego.v1

pass(f) := f.techdocs.present
