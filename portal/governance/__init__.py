"""Approval workflows, Rego policy gates, reviews and the audit views."""
