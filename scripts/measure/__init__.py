"""Benchmarks that print numbers: cold start and warm path (bench), DynamoDB capacity, and cost per million requests."""
