"""What the tests share besides fixtures: seed tenants, the API client, AWS set-up, captured output."""
