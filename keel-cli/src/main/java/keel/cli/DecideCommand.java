package keel.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/** {@code keel approve ID} and {@code keel deny ID --reason ...}: decide a pending approval. */
abstract class DecideCommand implements Callable<Integer> {

  private final Io io;
  private final boolean approve;

  @Mixin ClientOptions client = new ClientOptions();

  @Parameters(index = "0", paramLabel = "ID", description = "The approval's id, as `keel approvals` shows it.")
  String id;

  DecideCommand(Io io, boolean approve) {
    this.io = io;
    this.approve = approve;
  }

  abstract String reason();

  String arguments() {
    return null;
  }

  @Override
  public Integer call() {
    ObjectNode body = KeelClient.JSON.createObjectNode();
    if (reason() != null) {
      body.put("reason", reason());
    }
    if (arguments() != null) {
      JsonNode args;
      try {
        args = KeelClient.JSON.readTree(arguments());
      } catch (RuntimeException e) {
        throw new CliException(ExitCodes.USAGE, "--arguments: not valid JSON: " + e.getMessage());
      }
      if (!args.isObject()) {
        throw new CliException(ExitCodes.USAGE, "--arguments: expected a JSON object such as {\"amount\": 100}");
      }
      body.set("arguments", args);
    }
    JsonNode r = client.connect(io).post("/v1/approvals/" + KeelClient.segment(id) + (approve ? "/approve" : "/deny"), body);
    if (client.json()) {
      io.out().println(Main.pretty(r));
    } else {
      io.out().println("approval " + id + " " + r.path("status").asString() + ": " + r.path("tool").asString() + " of session "
          + r.path("session_id").asString() + (approve ? " runs now (checked again first)" : "; the model is told why")
          + ". Follow it with `keel events " + r.path("session_id").asString() + " --follow`.");
    }
    return ExitCodes.OK;
  }

  @Command(
      name = "approve",
      header = "Approve an external call that waits for a human.",
      mixinStandardHelpOptions = true,
      description = {
        "Approves a pending approval: the session runs the call. With --arguments the call runs with those arguments instead, after the same checks again (schema, grants, deny rules): an edit never bypasses a rule. Needs the approver role for the agent's owner; the operator who started the session may not approve it. A decided approval is a conflict (exit code 5)."
      },
      footerHeading = "%nExamples:%n",
      footer = {"  keel approve apr_0123abcd --reason \"invoice checked\"", "  keel approve apr_0123abcd --arguments '{\"amount\": 900}'"})
  static final class Approve extends DecideCommand {
    @Option(names = "--reason", paramLabel = "TEXT", description = "Why (recorded and shown in the trace).")
    String reason;

    @Option(names = "--arguments", paramLabel = "JSON", description = "The call's arguments as a JSON object, replacing the model's.")
    String arguments;

    Approve(Io io) {
      super(io, true);
    }

    @Override
    String reason() {
      return reason;
    }

    @Override
    String arguments() {
      return arguments;
    }
  }

  @Command(
      name = "deny",
      header = "Deny an external call that waits for a human.",
      mixinStandardHelpOptions = true,
      description = {"Denies a pending approval: the call does not run and the model reads the reason as its result."},
      footerHeading = "%nExamples:%n",
      footer = {"  keel deny apr_0123abcd --reason \"duplicate invoice\""})
  static final class Deny extends DecideCommand {
    @Option(names = "--reason", paramLabel = "TEXT", required = true, description = "Why (required; the model reads it).")
    String reason;

    Deny(Io io) {
      super(io, false);
    }

    @Override
    String reason() {
      return reason;
    }
  }
}
