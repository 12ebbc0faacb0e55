"""The web edge: the authorizer, API Gateway's answers, request validation, responses and their middleware, and the OpenAPI document."""
