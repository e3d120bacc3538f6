// Starts Swagger UI (swagger-ui-dist, served by this node) on the OpenAPI of this node.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null, // the public validator badge would call out to the internet
  });
});
