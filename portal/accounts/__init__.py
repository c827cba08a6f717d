"""Users, teams (the tenants), roles, API tokens and the permission module."""
