"""The API reference: the OpenAPI document of a running stage, rendered by `make docs`."""
