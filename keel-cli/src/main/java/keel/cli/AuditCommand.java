package keel.cli;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tools.jackson.databind.JsonNode;

/** {@code keel audit}: the hash-chained audit log, queried and verified. */
@Command(
    name = "audit",
    header = "Query the audit log, or verify its hash chain.",
    mixinStandardHelpOptions = true,
    description = {
      "Every external call, policy decision, approval and catalog change is in the audit log, oldest first, each"
          + " entry chained to the one before by a SHA-256 hash. Without a subcommand: the entries the filters"
          + " select (only owners your token may view). Times are UTC; a date in --until includes that day.",
      "",
      "keel audit verify walks the whole chain and exits non-zero, naming the first broken entry and why, if an"
          + " entry was edited or deleted; it needs viewer for every owner."
    },
    footerHeading = "%nExamples:%n",
    footer = {
      "  keel audit",
      "  keel audit --agent invoices --kind tool_call --since 2026-11-01",
      "  keel audit --session s_01H... -o json",
      "  keel audit verify",
      "  keel audit verify --expect-head 3f2a...e9 (a head hash kept elsewhere earlier)"
    })
final class AuditCommand implements Callable<Integer> {

  private final Io io;

  @Mixin ClientOptions client = new ClientOptions();

  @Option(names = "--kind", paramLabel = "KIND", description = "Only entries of this kind (tool_call, tool_result, policy_decision, ...).")
  String kind;

  @Option(names = "--agent", paramLabel = "NAME", description = "Only this agent's entries.")
  String agent;

  @Option(names = "--owner", paramLabel = "OWNER", description = "Only this owner's entries.")
  String owner;

  @Option(names = "--session", paramLabel = "ID", description = "Only this session's entries.")
  String session;

  @Option(names = "--tool", paramLabel = "SERVER/TOOL", description = "Only this tool's entries.")
  String tool;

  @Option(names = "--since", paramLabel = "WHEN", description = "First day (2026-11-21) or instant (2026-11-21T09:30:00Z) shown.")
  String since;

  @Option(names = "--until", paramLabel = "WHEN", description = "Last day shown, or the instant the range ends.")
  String until;

  @Option(names = "--after", paramLabel = "SEQ", description = "Only entries after this sequence number (to page on).")
  Long after;

  @Option(names = "--limit", paramLabel = "N", description = "At most this many entries, 1 to 1000 (default: 100).")
  Integer limit;

  AuditCommand(Io io) {
    this.io = io;
  }

  @Override
  public Integer call() {
    StringBuilder q = new StringBuilder("/v1/audit?");
    append(q, "kind", kind);
    append(q, "agent", agent);
    append(q, "owner", owner);
    append(q, "session", session);
    append(q, "tool", tool);
    append(q, "since", since);
    append(q, "until", until);
    append(q, "after", after == null ? null : after.toString());
    append(q, "limit", limit == null ? null : limit.toString());
    JsonNode r = client.connect(io).get(q.toString());
    if (client.json()) {
      io.out().println(Main.pretty(r));
      return ExitCodes.OK;
    }
    Table t = new Table("SEQ", "TIME", "KIND", "ACTOR", "AGENT", "SESSION", "TOOL", "DETAIL");
    for (JsonNode e : r.path("entries")) {
      t.row(Text.of(e, "seq"), Text.of(e, "at"), Text.of(e, "kind"), Text.of(e, "actor"), Text.of(e, "agent"),
          Text.of(e, "session_id"), Text.of(e, "tool"), Text.abbreviate(e.path("detail").toString(), 80));
    }
    if (t.isEmpty()) {
      io.err().println("No audit entries match.");
      return ExitCodes.OK;
    }
    t.print(io.out());
    if (r.has("next_after")) {
      io.err().println("More entries: add --after " + Text.of(r, "next_after") + ".");
    }
    return ExitCodes.OK;
  }

  @Command(name = "verify", mixinStandardHelpOptions = true,
      header = "Walk the audit log's hash chain; exit 1 naming the first broken entry if it was edited or deleted.",
      description = {
        "Checks every entry: sequence numbers follow from 1 with no gap, each entry names the previous entry's hash,"
            + " each entry hashes to its stored hash, and the last entry is the head the store keeps. Prints the"
            + " number of entries and the head hash: keep that hash elsewhere (a ticket, another system) and pass"
            + " it later as --expect-head to detect a log rewritten as a whole."
      })
  int verify(
      @Mixin ClientOptions options,
      @Option(names = "--expect-head", paramLabel = "HASH",
          description = "A head hash kept outside Keel earlier: the chain must still contain it.") String expectHead) {
    String path = "/v1/audit/verify" + (expectHead == null || expectHead.isBlank() ? "" : "?expect_head=" + encode(expectHead.strip()));
    JsonNode r = options.connect(io).get(path);
    boolean ok = r.path("ok").asBoolean(false);
    if (options.json()) {
      io.out().println(Main.pretty(r));
    } else if (ok) {
      io.out().println("The audit log is intact: " + Text.of(r, "checked") + " entries, head " + Text.of(r, "head_hash") + ".");
      if (r.has("anchor_seq")) {
        io.out().println("The expected head is entry " + Text.of(r, "anchor_seq") + " of the chain.");
      }
    } else {
      io.err().println("The audit log is broken at entry " + Text.of(r, "seq") + " (" + Text.of(r, "problem") + "): "
          + Text.of(r, "reason") + ". " + Text.of(r, "checked") + " entries before it are intact.");
    }
    return ok ? ExitCodes.OK : ExitCodes.FAILED;
  }

  private static void append(StringBuilder q, String name, String value) {
    if (value != null && !value.isBlank()) {
      q.append(q.charAt(q.length() - 1) == '?' ? "" : "&").append(name).append('=').append(encode(value));
    }
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }
}
