"""The client API: routes, request schemas, the model catalog, OpenAPI, turning a request into
a stored, queued job."""
