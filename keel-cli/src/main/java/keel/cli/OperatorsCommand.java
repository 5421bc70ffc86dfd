package keel.cli;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/** {@code keel operators}: the people and scripts that may use the API, and their roles. */
@Command(
    name = "operators",
    header = "Create, list and revoke operators (API tokens with roles).",
    mixinStandardHelpOptions = true,
    description = {
      "Operators are the people and scripts that use the API. Each has an API token and roles: viewer (reads),"
          + " operator (runs sessions), approver (decides approvals), admin (applies descriptors, manages operators)."
          + " A role may be scoped to one owner (the metadata.owner of agents) as ROLE@OWNER. An admin scoped to"
          + " owners manages only operators whose roles are all scoped to those owners.",
      "",
      "A token is printed once, when it is issued, on standard output alone (so TOKEN=$(keel operators create ...)"
          + " works); the server keeps only its hash."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel operators create alice --role approver@finance --role viewer",
      "  keel operators list",
      "  keel operators rotate ci-bot",
      "  keel operators revoke alice"
    })
final class OperatorsCommand implements Callable<Integer> {

  private final Io io;

  @Spec CommandSpec spec;

  OperatorsCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    spec.commandLine().usage(io.err());
    return ExitCodes.USAGE;
  }

  @Command(name = "create", mixinStandardHelpOptions = true, header = "Create an operator; print its token once.")
  int create(
      @Mixin ClientOptions client,
      @Parameters(paramLabel = "NAME", description = "1 to 63 lower-case letters, digits, dots, dashes and underscores.") String name,
      @Option(names = "--role", paramLabel = "ROLE[@OWNER]", required = true,
          description = "viewer, operator, approver or admin, for every owner or @OWNER. Repeatable.") List<String> roles) {
    ObjectNode body = KeelClient.JSON.createObjectNode().put("name", name);
    roles.forEach(body.putArray("roles")::add);
    KeelClient c = client.connect(io);
    JsonNode r = c.post("/v1/operators", body);
    return printIssued(client, c, r, "Operator " + Text.of(r, "name") + " is created with the roles " + roles(r) + ".");
  }

  @Command(name = "list", mixinStandardHelpOptions = true, header = "List the operators you manage; tokens are never shown.")
  int list(@Mixin ClientOptions client) {
    JsonNode r = client.connect(io).get("/v1/operators");
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    Instant now = Instant.now();
    Table t = new Table("NAME", "ROLES", "STATUS", "CREATED BY", "CREATED", "TOKEN ISSUED");
    for (JsonNode o : r.path("operators")) {
      t.row(
          Text.of(o, "name"),
          roles(o),
          Text.of(o, "status") + (o.path("bootstrap").asBoolean(false) ? " (admin token file)" : ""),
          Text.of(o, "created_by"),
          Text.age(Text.of(o, "created_at"), now) + " ago",
          o.has("token_issued_at") ? Text.age(Text.of(o, "token_issued_at"), now) + " ago" : "-");
    }
    if (t.isEmpty()) {
      io.err().println("You manage no operators.");
    } else {
      t.print(io.out());
    }
    return ExitCodes.OK;
  }

  @Command(name = "revoke", mixinStandardHelpOptions = true, header = "Revoke an operator; its token stops working at once.")
  int revoke(@Mixin ClientOptions client, @Parameters(paramLabel = "NAME", description = "The operator's name.") String name) {
    JsonNode r = client.connect(io).post("/v1/operators/" + KeelClient.segment(name) + "/revoke", KeelClient.JSON.createObjectNode());
    if (client.json()) {
      io.out().println(Main.pretty(r));
    } else {
      io.out().println("Operator " + name + " is revoked; its token no longer works.");
    }
    return ExitCodes.OK;
  }

  @Command(name = "rotate", mixinStandardHelpOptions = true, header = "Issue a new token for an operator; the old one stops working.")
  int rotate(@Mixin ClientOptions client, @Parameters(paramLabel = "NAME", description = "The operator's name.") String name) {
    KeelClient c = client.connect(io);
    JsonNode r = c.post("/v1/operators/" + KeelClient.segment(name) + "/token", KeelClient.JSON.createObjectNode());
    return printIssued(client, c, r, "Operator " + name + " has a new token; the previous one no longer works.");
  }

  /** The token alone on standard output; what happened and what to do with it on standard error. */
  private int printIssued(ClientOptions client, KeelClient c, JsonNode r, String what) {
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    io.err().println(what);
    io.err().println("Its token follows; it is shown only this once. Give it to " + Text.of(r, "name")
        + ", who logs in with: keel login --server " + c.url() + " --token -");
    io.out().println(Text.of(r, "token"));
    return ExitCodes.OK;
  }

  static String roles(JsonNode operator) {
    List<String> out = new ArrayList<>();
    operator.path("roles").forEach(x -> out.add(x.asString()));
    return out.isEmpty() ? "-" : String.join(", ", out);
  }
}
