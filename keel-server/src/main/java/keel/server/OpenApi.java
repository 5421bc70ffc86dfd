package keel.server;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import tools.jackson.databind.node.ObjectNode;

/** Writes the OpenAPI 3.1 document of the API from its route table. */
final class OpenApi {

  private static final Pattern PATH_PARAM = Pattern.compile("\\{([a-z_]+)}");

  private OpenApi() {}

  static ObjectNode document(List<Api.Route> routes) {
    ObjectNode doc = Views.JSON.createObjectNode();
    doc.put("openapi", "3.1.0");
    doc.putObject("info").put("title", "Keel API").put("version", "v1")
        .put("description", "Durable AI agent sessions. Errors are application/problem+json; every route under /v1 needs a"
            + " bearer token. Outside /v1, /healthz, /readyz and " + Api.JWKS_PATH + " need none: the last is the JWKS"
            + " document of the public keys that verify session tokens, public by design.");
    ObjectNode schemes = doc.putObject("components").putObject("securitySchemes");
    schemes.putObject("bearer").put("type", "http").put("scheme", "bearer");
    ObjectNode problem = ((ObjectNode) doc.get("components")).putObject("schemas").putObject("Problem");
    problem.put("type", "object");
    ObjectNode pp = problem.putObject("properties");
    for (String f : List.of("type", "title", "detail", "instance")) {
      pp.putObject(f).put("type", "string");
    }
    pp.putObject("status").put("type", "integer");
    pp.putObject("errors").put("type", "array").putObject("items").put("type", "string");
    doc.putArray("security").addObject().putArray("bearer");
    ObjectNode paths = doc.putObject("paths");
    for (Api.Route r : routes) {
      ObjectNode path = paths.has(r.path()) ? (ObjectNode) paths.get(r.path()) : paths.putObject(r.path());
      ObjectNode op = path.putObject(r.method().toLowerCase(java.util.Locale.ROOT));
      op.put("summary", r.summary());
      op.put("description", "Needs: " + r.access().describe() + ".");
      op.put("x-keel-access", r.access().describe());
      op.put("operationId", r.method().toLowerCase(java.util.Locale.ROOT) + r.path().replaceAll("[^A-Za-z0-9]+", "_"));
      Matcher m = PATH_PARAM.matcher(r.path());
      var params = op.putArray("parameters");
      while (m.find()) {
        params.addObject().put("name", m.group(1)).put("in", "path").put("required", true).putObject("schema").put("type", "string");
      }
      r.requestSchema().ifPresent(s -> op.putObject("requestBody").put("required", true).putObject("content")
          .putObject("application/json").set("schema", Views.JSON.readTree(s)));
      ObjectNode responses = op.putObject("responses");
      responses.putObject(Integer.toString(r.okStatus())).put("description", "success");
      for (int status : List.of(400, 401, 403, 404, 409, 429, 503)) {
        responses.putObject(Integer.toString(status)).put("description", "problem").putObject("content")
            .putObject("application/problem+json").putObject("schema").put("$ref", "#/components/schemas/Problem");
      }
    }
    return doc;
  }
}
