"""Software templates, scaffolder actions and runs."""
