package keel.server;

import io.javalin.http.Context;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import keel.control.ApprovalAuthority;
import keel.control.Caller;
import keel.control.Role;
import keel.core.AgentDescriptor;
import keel.core.KeelException;
import keel.data.Approval;
import keel.data.ApprovalStore;
import keel.data.SessionRecord;
import keel.data.Store;
import keel.execution.SessionService;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * The approvals inbox over HTTP: listing, one approval, approve and deny, and a stream of
 * notifications (requested, decided, expired, withdrawn) for the owners the caller may view. Every
 * node streams the changes of every node sharing the store: its own as they happen, others' through
 * the store's notices (PostgreSQL {@code LISTEN/NOTIFY}).
 *
 * <p>Thread-safe.
 */
final class ApprovalsApi {

  private static final long HEARTBEAT_SECONDS = 15;

  private record Notice(String what, Approval approval) {}

  private final SessionService sessions;
  private final Store store;
  /** The open streams' queues; a full queue drops its stream (the client reconnects). */
  private final List<BlockingQueue<Notice>> streams = new CopyOnWriteArrayList<>();

  ApprovalsApi(SessionService sessions, Store store) {
    this.sessions = sessions;
    this.store = store;
    // every node's stream carries the changes of every node (the webhook only this node's)
    sessions.addClusterApprovalListener((what, a) -> {
      for (BlockingQueue<Notice> q : streams) {
        q.offer(new Notice(what, a));
      }
    });
  }

  /** The owners whose approvals the caller may view; empty: every owner. */
  private static Optional<Set<String>> visibleOwners(Caller caller) {
    if (caller.mayEverywhere(Role.VIEWER)) {
      return Optional.empty();
    }
    return Optional.of(caller.bindings().stream()
        .filter(b -> b.role().includes(Role.VIEWER) && b.owner().isPresent())
        .map(b -> b.owner().get())
        .collect(java.util.stream.Collectors.toSet()));
  }

  void list(Context ctx) {
    Caller caller = Api.caller(ctx);
    Optional<Approval.Status> status = Optional.ofNullable(ctx.queryParam("status")).filter(s -> !s.isBlank() && !s.equals("all"))
        .map(Approval.Status::fromWire);
    if (ctx.queryParam("status") == null) {
      status = Optional.of(Approval.Status.PENDING);
    }
    Optional<String> agent = Optional.ofNullable(ctx.queryParam("agent")).filter(s -> !s.isBlank());
    int limit = limit(ctx);
    List<Approval> found = list(caller, status, agent, limit);
    ObjectNode o = Views.JSON.createObjectNode();
    o.set("approvals", Views.array(found.stream().map(Views::approval).toList()));
    json(ctx, 200, o);
  }

  private static int limit(Context ctx) {
    String v = ctx.queryParam("limit");
    if (v == null || v.isBlank()) {
      return 100;
    }
    try {
      int i = Integer.parseInt(v);
      if (i >= 1 && i <= 1000) {
        return i;
      }
    } catch (NumberFormatException e) {
      // reported below
    }
    throw new KeelException.Invalid("limit: expected a number from 1 to 1000, got \"" + v + "\"");
  }

  private Approval visible(Context ctx) {
    return visible(Api.caller(ctx), ctx.pathParam("id"));
  }

  void get(Context ctx) {
    json(ctx, 200, Views.approval(visible(ctx)));
  }

  void approve(Context ctx) {
    decide(ctx, true);
  }

  void deny(Context ctx) {
    decide(ctx, false);
  }

  private void decide(Context ctx, boolean approve) {
    Approval a = visible(ctx);
    ObjectNode body = body(ctx);
    Approval decided = decide(Api.caller(ctx), a, approve, Optional.ofNullable(body.get("reason")), Optional.ofNullable(body.get("arguments")));
    json(ctx, 200, Views.approval(decided));
  }

  /**
   * Decides {@code a} as {@code caller}, after checking the reason and the edited arguments and that
   * the caller may decide it: the one path of the API and the dashboard's forms.
   *
   * @param reason the reason as a JSON value (a string; required to deny)
   * @param args the edited arguments (a JSON object; only on approve)
   * @throws KeelException.Invalid naming the field that is wrong
   * @throws KeelException.Forbidden saying which rule refuses the caller
   * @throws KeelException.Conflict when the approval is no longer pending
   */
  Approval decide(Caller caller, Approval a, boolean approve, Optional<JsonNode> reason, Optional<JsonNode> args) {
    if (!approve && (reason.isEmpty() || !reason.get().isString() || reason.get().asString().isBlank())) {
      throw new KeelException.Invalid("reason: required: a string saying why approval " + a.id() + " is denied"
          + reason.map(r -> ", got " + r).orElse(""));
    }
    if (reason.isPresent() && !reason.get().isString()) {
      throw new KeelException.Invalid("reason: expected a string, got " + reason.get());
    }
    if (!approve && args.isPresent()) {
      throw new KeelException.Invalid("arguments: only an approval may edit the call's arguments");
    }
    if (args.isPresent() && !args.get().isObject()) {
      throw new KeelException.Invalid("arguments: expected a JSON object of the call's arguments, got " + args.get());
    }
    ApprovalAuthority.check(caller, a.id(), a.owner(), a.requester(), approvers(a));
    return sessions.decideApproval(a.id(), approve, caller.principal(),
        reason.map(JsonNode::asString).orElse(""), args.map(Views.JSON::writeValueAsString).orElse(""));
  }

  /** Why {@code caller} may not decide {@code a}, or empty when it may (the rules of {@link ApprovalAuthority}). */
  Optional<String> refusal(Caller caller, Approval a) {
    try {
      ApprovalAuthority.check(caller, a.id(), a.owner(), a.requester(), approvers(a));
      return Optional.empty();
    } catch (KeelException.Forbidden | KeelException.NotFound e) {
      return Optional.of(e.getMessage());
    }
  }

  /** The approvals {@code caller} may view, as the API lists them. */
  List<Approval> list(Caller caller, Optional<Approval.Status> status, Optional<String> agent, int limit) {
    return store.approvals().list(new ApprovalStore.Query(status, agent, visibleOwners(caller), limit));
  }

  /** The approval {@code id}, when {@code caller} may view it. */
  Approval visible(Caller caller, String id) {
    Approval a = store.approvals().find(id).orElseThrow(() -> new KeelException.NotFound("there is no approval \"" + id + "\""));
    if (!caller.may(Role.VIEWER, a.owner())) {
      throw new KeelException.Forbidden(caller.principal() + " may not view approval " + id + ": it needs the role viewer for owner \""
          + a.owner() + "\"");
    }
    return a;
  }

  /**
   * The approvers the session's agent revision lists; for an approval without a session (a call of
   * an outside MCP client), those of the agent's current revision when an agent's token made the
   * call, and none (any approver of the owner) when an operator made it.
   */
  private List<String> approvers(Approval a) {
    if (a.sessionId().isEmpty()) {
      if (a.agent().isEmpty()) {
        return List.of();
      }
      return sessions.catalog().find(a.agent())
          .flatMap(v -> v.agent().spec().approval()).map(AgentDescriptor.ApprovalSpec::approvers).orElse(List.of());
    }
    SessionRecord r = store.events().session(a.sessionId())
        .orElseThrow(() -> new KeelException.NotFound("the session " + a.sessionId() + " of approval " + a.id() + " is gone"));
    AgentDescriptor agent = sessions.catalog().revision(r.agent(), r.revision());
    return agent.spec().approval().map(AgentDescriptor.ApprovalSpec::approvers).orElse(List.of());
  }

  void stream(Context ctx) {
    Caller caller = Api.caller(ctx);
    Optional<Set<String>> owners = visibleOwners(caller);
    Predicate<Approval> shown = a -> owners.isEmpty() || owners.get().contains(a.owner());
    BlockingQueue<Notice> queue = new ArrayBlockingQueue<>(1024);
    ctx.res().setStatus(200);
    ctx.res().setContentType("text/event-stream");
    ctx.res().setCharacterEncoding("UTF-8");
    ctx.res().setHeader("Cache-Control", "no-cache");
    ctx.res().setHeader("X-Accel-Buffering", "no");
    streams.add(queue);
    try {
      OutputStream out = ctx.res().getOutputStream();
      write(out, ": approvals\n\n");
      while (true) {
        Notice n = queue.poll(HEARTBEAT_SECONDS, TimeUnit.SECONDS);
        if (queue.remainingCapacity() == 0) {
          write(out, "event: overflow\ndata: {}\n\n");
          return;
        }
        if (n == null) {
          write(out, ": keep-alive\n\n");
        } else if (shown.test(n.approval())) {
          write(out, "event: " + n.what() + "\ndata: " + Views.JSON.writeValueAsString(Views.approval(n.approval())) + "\n\n");
        }
      }
    } catch (IOException gone) {
      // the client went away
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      streams.remove(queue);
    }
  }

  private static void write(OutputStream out, String s) throws IOException {
    out.write(s.getBytes(StandardCharsets.UTF_8));
    out.flush();
  }

  private static ObjectNode body(Context ctx) {
    String text = ctx.body();
    if (text.isBlank()) {
      return Views.JSON.createObjectNode();
    }
    try {
      if (Views.JSON.readTree(text) instanceof ObjectNode o) {
        return o;
      }
    } catch (RuntimeException e) {
      throw new KeelException.Invalid("request body: not valid JSON");
    }
    throw new KeelException.Invalid("request body: expected a JSON object");
  }

  private static void json(Context ctx, int status, JsonNode node) {
    ctx.status(status).contentType("application/json").result(Views.JSON.writeValueAsString(node));
  }
}
