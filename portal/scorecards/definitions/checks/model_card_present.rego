# A model card (spec.modelCard) was found and built.
package plinth.checks.model_card_present

import rego.v1

pass(f) := f.model_card.present
