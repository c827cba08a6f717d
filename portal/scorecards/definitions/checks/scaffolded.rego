# Created from a software template (annotation backstage.io/source-template).
package plinth.checks.scaffolded

import rego.v1

pass(f) := f.scaffolder.template != null
