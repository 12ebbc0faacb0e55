"""Command-line tools around the application: local stack, provisioning, token issuing."""
