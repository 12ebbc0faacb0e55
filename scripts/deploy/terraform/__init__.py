"""The Terraform package of a stage: the files it renders, the schema they are checked against, and the command that writes them."""
