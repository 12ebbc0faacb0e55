"""Deploying a stage: bootstrap, IAM policies, post-deploy, smoke test, teardown, the layout migration and the Terraform package."""
