// Starts Swagger UI on /openapi.json. validatorUrl: null keeps the page from calling the public
// validator (nothing leaves this server); the spec is validated by the test suite instead.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    validatorUrl: null,
    defaultModelsExpandDepth: 0,
    defaultModelExpandDepth: 3,
    displayOperationId: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
});
