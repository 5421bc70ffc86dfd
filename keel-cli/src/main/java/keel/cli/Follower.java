package keel.cli;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;

/**
 * Follows one turn of a session over its event stream and prints it as it happens: the model's
 * text (live, from {@code delta} frames, then the final text), each tool call with its arguments
 * and its result, denials and failures. It stops when the turn ends: the model answers without
 * calling tools, the session completes, fails or is cancelled, or a tool call's outcome is unknown
 * and a human must decide.
 *
 * <p>When the stream ends early (the server restarted, or this client fell behind) it reconnects
 * with {@code Last-Event-ID}, a bounded number of times. Not thread-safe; one follow at a time.
 */
final class Follower {

  private static final Duration WAIT_NOTICE = Duration.ofSeconds(5);
  private static final int MAX_RECONNECTS = 5;
  private static final int ARGS_CHARS = 160;
  private static final int RESULT_CHARS = 200;

  private final KeelClient client;
  private final Io io;
  private final boolean json;
  private final Duration timeout;

  // state of the turn being followed
  private boolean armed;
  private String waitFor;
  private final StringBuilder streamed = new StringBuilder();
  private boolean midLine;
  private boolean inModelCall;
  private final Map<String, String> toolNames = new HashMap<>();

  Follower(KeelClient client, Io io, boolean json, Duration timeout) {
    this.client = client;
    this.io = io;
    this.json = json;
    this.timeout = timeout;
  }

  /**
   * Follows session {@code id} from after event {@code after} until its turn ends.
   *
   * @param inputId when present, the turn to follow is the one started by this input; events of
   *     earlier turns are printed but do not end the follow
   * @return the exit code: 0 when the agent answered or the session completed, 1 when it failed,
   *     was cancelled or waits for a human
   */
  int follow(String id, long after, Optional<String> inputId) {
    armed = inputId.isEmpty();
    waitFor = inputId.orElse(null);
    long deadline = System.nanoTime() + timeout.toNanos();
    long last = after;
    int reconnects = 0;
    while (true) {
      try (SseStream stream = new SseStream(client.stream(id, last))) {
        while (true) {
          if (System.nanoTime() > deadline) {
            endLine();
            throw new CliException(
                ExitCodes.FAILED,
                "stopped following session " + id + " after " + timeout.toSeconds() + " s; it goes on"
                    + " on the server. Check it with `keel describe session " + id + "` or follow it"
                    + " again with `keel events " + id + " --after " + last + " --follow`.");
          }
          Optional<SseStream.Frame> next = stream.next(WAIT_NOTICE);
          if (next.isEmpty()) {
            endLine();
            io.err().println("waiting for session " + id + " (" + status(id) + ")…");
            continue;
          }
          SseStream.Frame f = next.get();
          if (f.end() || f.event().equals("overflow")) {
            break;
          }
          if (f.id().isPresent()) {
            last = f.id().get();
          }
          Optional<Integer> done = on(id, f);
          if (done.isPresent()) {
            endLine();
            return done.get();
          }
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new CliException(ExitCodes.FAILED, "interrupted while following session " + id);
      }
      if (++reconnects > MAX_RECONNECTS) {
        endLine();
        throw new CliException(
            ExitCodes.UNREACHABLE,
            "the event stream of session " + id + " ended " + MAX_RECONNECTS + " times; the server may be"
                + " restarting. Follow it again with `keel events " + id + " --after " + last + " --follow`.");
      }
    }
  }

  private String status(String id) {
    try {
      return Text.of(client.get("/v1/sessions/" + KeelClient.segment(id)), "status");
    } catch (CliException e) {
      return "status unknown: " + e.getMessage();
    }
  }

  private Optional<Integer> on(String id, SseStream.Frame f) {
    JsonNode frame;
    try {
      frame = KeelClient.JSON.readTree(f.data());
    } catch (JacksonException e) {
      return Optional.empty();
    }
    if (f.event().equals("delta")) {
      // deltas that arrive while the stream is still catching up belong to a model call whose
      // start has not been printed yet; its final text is printed when its response arrives
      if (!json && armed && inModelCall) {
        String text = Text.of(frame, "text");
        if (!midLine) {
          io.out().print("assistant: ");
          midLine = true;
        }
        io.out().print(text);
        io.out().flush();
        streamed.append(text);
      }
      return Optional.empty();
    }
    if (json) {
      io.out().println(KeelClient.JSON.writeValueAsString(frame));
    }
    JsonNode data = frame.path("data");
    String type = f.event();
    switch (type) {
      case "SessionStarted" ->
          say("session " + id + " started: agent " + Text.of(data, "agent") + " revision " + Text.of(data, "revision"));
      case "InputReceived" -> {
        if (!armed && Text.of(data, "inputId").equals(waitFor)) {
          armed = true;
        }
        say("you: " + Text.of(data, "text"));
      }
      case "ModelCalled" -> {
        streamed.setLength(0);
        inModelCall = true;
      }
      case "ModelResponded" -> {
        String text = Text.of(data, "text");
        inModelCall = false;
        if (!json) {
          if (midLine) {
            io.out().println();
            midLine = false;
            if (!streamed.toString().equals(text) && !text.isEmpty()) {
              io.out().println("assistant: " + text);
            }
          } else if (!text.isEmpty()) {
            io.out().println("assistant: " + text);
          }
        }
        streamed.setLength(0);
        JsonNode calls = data.path("toolCalls");
        for (JsonNode c : calls) {
          toolNames.put(Text.of(c, "id"), Text.of(c, "name"));
          say("  → " + Text.of(c, "name") + " " + Text.abbreviate(Text.of(c, "arguments"), ARGS_CHARS));
        }
        if (calls.isEmpty() && armed) {
          return Optional.of(ExitCodes.OK);
        }
      }
      case "ModelEscalated" ->
          say("  ↑ escalated from " + Text.of(data, "fromProvider") + "/" + Text.of(data, "fromModel") + " to "
              + Text.of(data, "toProvider") + "/" + Text.of(data, "toModel") + ": " + Text.of(data, "reason"));
      case "ModelDrifted" -> {
        String action = Text.of(data, "action");
        say("  ! model drift: pinned " + Text.of(data, "pinned") + ", answered by " + Text.of(data, "reported")
            + " (on_drift: " + action + ")");
        if (action.equals("suspend")) {
          say("The session waits for a human. If that version is acceptable for this session, resume it with:\n"
              + "  keel resume " + id + "\nor change spec.model.pinned_revision and start a new session.");
          return Optional.of(ExitCodes.FAILED);
        }
      }
      case "SessionResumed" ->
          say("  (resumed by " + Text.of(data, "by") + ", accepting " + Text.of(data, "acceptedVersion") + ")");
      case "ToolCallDenied" ->
          say("  ✗ " + tool(data) + " denied: " + Text.of(data, "reason"));
      case "SubagentSpawned" ->
          say("  ⇢ delegated to agent " + Text.of(data, "agent") + " (session " + Text.of(data, "childSessionId")
              + "); waiting for its answer");
      case "SubagentCompleted" -> {
        String outcome = Text.of(data, "outcome");
        say("  ⇠ " + tool(data) + (outcome.equals("completed") ? ": " : " " + outcome + ": ")
            + Text.abbreviate(Text.content(data.get("result")), RESULT_CHARS));
      }
      case "ToolCallCompleted" -> {
        boolean error = data.path("error").asBoolean(false);
        say("  ← " + tool(data) + (error ? " failed: " : ": ")
            + Text.abbreviate(Text.content(data.get("result")), RESULT_CHARS)
            + " (" + Text.of(data, "durationMillis") + " ms)");
      }
      case "ToolOutcomeUnknown" -> {
        String call = Text.of(data, "callId");
        say("  ? " + tool(data) + ": outcome unknown: " + Text.of(data, "reason"));
        say("The session waits for a human to say what became of call " + call + ". Check whether it"
            + " happened, then resolve it with:\n  keel resolve " + id + " " + call
            + " succeeded|failed|retry [--result TEXT]");
        return Optional.of(ExitCodes.FAILED);
      }
      case "ToolOutcomeResolved" ->
          say("  ← " + tool(data) + " resolved as " + Text.of(data, "resolution") + " by " + Text.of(data, "decidedBy"));
      case "ApprovalRequested" -> {
        say("  ⏸ " + tool(data) + " " + Text.of(data, "tool") + " ($" + Text.of(data, "valueUsd") + ") waits for approval "
            + Text.of(data, "approvalId") + ": " + EventsCommand.reasons(data));
        say("  an approver decides with `keel approve " + Text.of(data, "approvalId") + "` or `keel deny "
            + Text.of(data, "approvalId") + " --reason ...` (expires " + Text.of(data, "expiresAt") + ")");
      }
      case "ApprovalDecided" ->
          say("  " + (Text.of(data, "decision").equals("approved") ? "✓ " : "✗ ") + tool(data) + " " + Text.of(data, "decision")
              + " by " + Text.of(data, "by") + ": " + Text.of(data, "reason"));
      case "ActionProposed" ->
          say("  ◌ " + tool(data) + " " + Text.of(data, "tool") + " " + Text.of(data, "arguments") + " proposed (shadow mode), not executed");
      case "StepInterrupted" -> say("  (step interrupted: " + Text.of(data, "reason") + ")");
      case "InputRejected" -> say("  (input rejected: " + Text.of(data, "reason") + ")");
      case "SessionCompleted" -> {
        say("session " + id + " completed.");
        return Optional.of(ExitCodes.OK);
      }
      case "SessionFailed" -> {
        sayErr("session " + id + " failed (" + Text.of(data, "code") + "): " + Text.of(data, "message")
            + (data.path("retryable").asBoolean(false) ? " (retrying may help)" : ""));
        return Optional.of(ExitCodes.FAILED);
      }
      case "SessionCancelled" -> {
        sayErr("session " + id + " was cancelled by " + Text.of(data, "by") + ": " + Text.of(data, "reason"));
        return Optional.of(ExitCodes.FAILED);
      }
      case "BudgetWarning" ->
          say("  ! budget " + Text.of(data, "kind") + " is at " + Text.of(data, "used") + " of its limit "
              + Text.of(data, "limit") + " (window ends " + Text.of(data, "windowEnd") + ")");
      case "BudgetBlocked" -> {
        say("  ‖ budget " + Text.of(data, "kind") + " exhausted: " + Text.of(data, "used") + " used and "
            + Text.of(data, "reserved") + " reserved of " + Text.of(data, "limit") + "; this call needs " + Text.of(data, "requested"));
        say("The session waits (budget_blocked). It goes on by itself when the window ends at " + Text.of(data, "windowEnd")
            + ", or as soon as a raised limit of the agent is active (keel apply, then keel rollout approve). See `keel budget AGENT`; follow it"
            + " again with:\n  keel events " + id + " --after " + f.id().map(String::valueOf).orElse("0") + " --follow");
        return Optional.of(ExitCodes.FAILED);
      }
      case "BudgetUnblocked" -> say("  (budget " + Text.of(data, "kind") + " allows it again: " + Text.of(data, "reason") + ")");
      default -> {
        // ToolCallAuthorized, ToolCallStarted and newer events print nothing here
      }
    }
    return Optional.empty();
  }

  private String tool(JsonNode data) {
    String call = Text.of(data, "callId");
    return toolNames.getOrDefault(call, "tool call " + call);
  }

  private void say(String line) {
    if (!json) {
      endLine();
      io.out().println(line);
    }
  }

  private void sayErr(String line) {
    endLine();
    io.err().println(line);
  }

  private void endLine() {
    if (midLine) {
      io.out().println();
      midLine = false;
    }
  }
}
