"""The store: DynamoDB keys, the table definition, the tenant-scoped client, and one module per aggregate."""
