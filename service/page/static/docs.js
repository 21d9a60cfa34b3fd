// Starts Swagger UI on this service's own document. A file of its own: the CSP allows no inline script.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null, // the default badge would load an image from swagger.io
  });
});
