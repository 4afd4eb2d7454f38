// Starts Swagger UI on /docs from the app's own copy (see backend/api/docs.py).
/* global SwaggerUIBundle */
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // Without this Swagger UI sends the schema's address to validator.swagger.io.
  validatorUrl: null,
});
