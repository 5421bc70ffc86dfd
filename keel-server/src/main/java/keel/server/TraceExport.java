package keel.server;

import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.common.Attributes;
import io.opentelemetry.api.common.AttributesBuilder;
import io.opentelemetry.api.trace.SpanContext;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.TraceFlags;
import io.opentelemetry.api.trace.TraceState;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.common.InstrumentationLibraryInfo;
import io.opentelemetry.sdk.common.InstrumentationScopeInfo;
import io.opentelemetry.sdk.resources.Resource;
import io.opentelemetry.sdk.trace.data.EventData;
import io.opentelemetry.sdk.trace.data.LinkData;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.data.StatusData;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import keel.core.SessionEvent;
import keel.core.SessionStatus;
import keel.core.StoredEvent;
import keel.data.SessionRecord;
import keel.data.Store;
import keel.execution.Trace;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Exports session traces over OTLP, following the OpenTelemetry GenAI semantic conventions.
 *
 * <p>Design: spans are never built from in-memory state. When a run of a session ends (the
 * session suspended or ended), its id is queued; the export thread reads the session's row and, if
 * it is not in the middle of a step, its events up to the row's last sequence number, derives the
 * trace from them ({@link Trace}), and sends every span that has ended by then and had not ended at
 * the session's export marker (the sequence number of the last successful export, kept in the
 * store). Both ends of that difference are points where the session was suspended, so a span is
 * sent once, when it is final; after a successful export the marker moves to the new sequence
 * number. A crash before the marker moves sends those spans again (at-least-once; span ids are
 * deterministic, so a backend sees the same span); a crash loses nothing, since a periodic sweep
 * (and one at start) finds every suspended session whose marker is behind its log.
 *
 * <p>One trace per root session: sub-agent sessions share their root's trace id, and a sub-agent
 * session's root span is the child of the {@code execute_tool} span that spawned it. A root
 * session started with a caller's {@code traceparent} hangs under the caller's span.
 *
 * <p>Failures never reach sessions: the queue is bounded (a session that does not fit is found by
 * the next sweep), an export that fails is logged and retried with backoff.
 *
 * <p>Thread-safe: {@link #sessionSuspended} may be called from any thread; one export thread does
 * the rest.
 */
final class TraceExport implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(TraceExport.class);
  private static final int QUEUE_CAPACITY = 10_000;
  private static final int SWEEP_BATCH = 1_000;
  private static final Duration SWEEP_PERIOD = Duration.ofSeconds(5);
  private static final Duration MAX_BACKOFF = Duration.ofSeconds(30);
  private static final Duration EXPORT_TIMEOUT = Duration.ofSeconds(10);
  private static final InstrumentationScopeInfo SCOPE = InstrumentationScopeInfo.builder("keel").build();

  private final Store store;
  private final SpanExporter exporter;
  private final Resource resource;
  private final LinkedBlockingQueue<String> queue = new LinkedBlockingQueue<>(QUEUE_CAPACITY);
  /** Sessions in {@link #queue}, so a busy session is queued once. */
  private final Set<String> queued = ConcurrentHashMap.newKeySet();
  private final Thread worker;
  private volatile boolean closed;

  TraceExport(Store store, SpanExporter exporter, String node) {
    this.store = store;
    this.exporter = exporter;
    this.resource =
        Resource.getDefault().merge(Resource.create(Attributes.of(
            AttributeKey.stringKey("service.name"), "keel", AttributeKey.stringKey("keel.node"), node)));
    this.worker = Thread.ofPlatform().name("keel-trace-export").daemon(true).start(this::work);
  }

  /** A run of the session ended: its spans may be final. Never blocks. */
  void sessionSuspended(String sessionId) {
    if (!closed && queued.add(sessionId) && !queue.offer(sessionId)) {
      // the sweep finds it: its marker is behind its log
      queued.remove(sessionId);
    }
  }

  private void work() {
    long nextSweep = 0;
    Duration backoff = Duration.ofSeconds(1);
    while (!closed) {
      try {
        if (System.nanoTime() - nextSweep >= 0) {
          for (String id : store.traceExports().unexported(SWEEP_BATCH)) {
            sessionSuspended(id);
          }
          nextSweep = System.nanoTime() + SWEEP_PERIOD.toNanos();
        }
        String id = queue.poll(SWEEP_PERIOD.toMillis(), TimeUnit.MILLISECONDS);
        if (id == null) {
          continue;
        }
        queued.remove(id);
        if (export(id)) {
          backoff = Duration.ofSeconds(1);
        } else {
          Thread.sleep(backoff.toMillis());
          backoff = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
          nextSweep = System.nanoTime();
        }
      } catch (InterruptedException e) {
        return;
      } catch (RuntimeException e) {
        LOG.warn("trace export: {}", e.toString());
      }
    }
  }

  /** Exports what is final of one session's trace; false when the exporter failed (retry later). */
  boolean export(String sessionId) {
    Optional<SessionRecord> found = store.events().session(sessionId);
    if (found.isEmpty()) {
      return true;
    }
    SessionRecord record = found.get();
    SessionStatus status = record.status();
    long marker = store.traceExports().exportedSeq(sessionId);
    if (status == SessionStatus.RUNNING || status == SessionStatus.RUNNABLE || record.lastSeq() <= marker) {
      return true;
    }
    List<StoredEvent> events = new ArrayList<>();
    store.events().forEachEvent(sessionId, 0, e -> {
      if (e.seq() <= record.lastSeq()) {
        events.add(e);
      }
    });
    if (events.isEmpty()) {
      return true;
    }
    Set<String> endedBefore = new HashSet<>();
    if (marker > 0) {
      List<StoredEvent> prefix = events.stream().filter(e -> e.seq() <= marker).toList();
      if (!prefix.isEmpty()) {
        collectEnded(Trace.of(sessionId, prefix), endedBefore);
      }
    }
    Trace.Span root = Trace.of(sessionId, events);
    String traceId = events.getFirst().traceId();
    Optional<String> rootParent = rootParent(record);
    List<SpanData> out = new ArrayList<>();
    collect(root, rootParent, traceId, record, endedBefore, out);
    if (!out.isEmpty()) {
      CompletableResultCode result = exporter.export(out).join(EXPORT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      if (!result.isSuccess()) {
        LOG.warn("trace export: {} spans of session {} were not accepted by the OTLP endpoint; retrying", out.size(), sessionId);
        return false;
      }
    }
    store.traceExports().markExported(sessionId, record.lastSeq());
    return true;
  }

  /** The parent of a session's root span: the spawning tool span, or the caller's span. */
  private Optional<String> rootParent(SessionRecord record) {
    if (record.parentId().isPresent()) {
      String parent = record.parentId().get();
      Optional<String>[] span = new Optional[] {Optional.empty()};
      store.events().forEachEvent(parent, 0, e -> {
        if (e.event() instanceof SessionEvent.SubagentSpawned s && s.childSessionId().equals(record.id())) {
          span[0] = Optional.of(e.spanId());
        }
      });
      return span[0];
    }
    return store.traceExports().remoteParent(record.id());
  }

  private static void collectEnded(Trace.Span span, Set<String> into) {
    if (span.end().isPresent()) {
      into.add(span.id());
    }
    for (Trace.Span c : span.children()) {
      collectEnded(c, into);
    }
  }

  private void collect(
      Trace.Span span, Optional<String> parent, String traceId, SessionRecord record, Set<String> endedBefore, List<SpanData> out) {
    String id = spanId(span.id());
    if (span.end().isPresent() && !endedBefore.contains(span.id())) {
      out.add(toSpanData(span, id, parent, traceId, record));
    }
    for (Trace.Span c : span.children()) {
      collect(c, Optional.of(id), traceId, record, endedBefore, out);
    }
  }

  /** A trace span's id as OTLP wants it (16 hex digits); event spans ({@code <span>-<seq>}) are hashed. */
  static String spanId(String id) {
    if (id.matches("[0-9a-f]{16}")) {
      return id;
    }
    long h = 0xcbf29ce484222325L;
    for (byte b : id.getBytes(StandardCharsets.UTF_8)) {
      h ^= (b & 0xff);
      h *= 0x100000001b3L;
    }
    return HexFormat.of().toHexDigits(h == 0 ? 1 : h);
  }

  private SpanData toSpanData(Trace.Span span, String id, Optional<String> parent, String traceId, SessionRecord record) {
    Map<String, String> a = span.attributes();
    AttributesBuilder attrs = Attributes.builder();
    attrs.put("keel.session.id", record.id());
    attrs.put("keel.root_session.id", record.rootId());
    String name;
    SpanKind kind = SpanKind.INTERNAL;
    switch (span.kind()) {
      case "session" -> {
        String agent = a.getOrDefault("keel.agent.name", record.agent());
        name = "invoke_agent " + agent;
        attrs.put("gen_ai.operation.name", "invoke_agent");
        attrs.put("gen_ai.agent.name", agent);
        attrs.put("gen_ai.conversation.id", record.id());
      }
      case "model" -> {
        String model = a.getOrDefault("gen_ai.request.model", "unknown");
        name = "chat " + model;
        kind = SpanKind.CLIENT;
        attrs.put("gen_ai.operation.name", "chat");
        attrs.put("gen_ai.conversation.id", record.id());
        if (a.containsKey("gen_ai.system")) {
          attrs.put("gen_ai.provider.name", a.get("gen_ai.system"));
        }
        attrs.put("gen_ai.agent.name", record.agent());
        if (a.containsKey("keel.model.tool_calls")) {
          attrs.put(AttributeKey.stringArrayKey("gen_ai.response.finish_reasons"),
              List.of(a.get("keel.model.tool_calls").equals("0") ? "stop" : "tool_calls"));
        }
      }
      case "tool" -> {
        String tool = a.getOrDefault("gen_ai.tool.name", a.getOrDefault("gen_ai.tool.call.id", "unknown"));
        name = "execute_tool " + tool;
        attrs.put("gen_ai.operation.name", "execute_tool");
        attrs.put("gen_ai.tool.type", toolType(a.getOrDefault("keel.tool.capability", "")));
      }
      case "turn" -> name = "turn " + record.agent();
      default -> name = span.name();
    }
    attrs.put("keel.span.kind", span.kind());
    for (Map.Entry<String, String> e : a.entrySet()) {
      switch (e.getKey()) {
        case "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "keel.model.tool_calls" ->
            attrs.put(e.getKey(), Long.parseLong(e.getValue()));
        case "keel.cost.usd" -> attrs.put("keel.cost_usd", Double.parseDouble(e.getValue()));
        default -> attrs.put(e.getKey(), e.getValue());
      }
    }
    if (span.kind().equals("turn")) {
      attrs.put("keel.turn.title", span.name());
    }
    SpanContext context = SpanContext.create(traceId, id, TraceFlags.getSampled(), TraceState.getDefault());
    SpanContext parentContext =
        parent.map(p -> SpanContext.createFromRemoteParent(traceId, p, TraceFlags.getSampled(), TraceState.getDefault()))
            .orElse(SpanContext.getInvalid());
    StatusData status = span.error() ? StatusData.create(StatusCode.ERROR, a.getOrDefault("keel.detail", "")) : StatusData.unset();
    return new ExportedSpan(
        name, kind, context, parentContext, status, nanos(span.start()), nanos(span.end().orElseThrow()), attrs.build(), resource);
  }

  private static String toolType(String capability) {
    if (capability.startsWith("mcp://")) {
      return "extension";
    }
    if (capability.startsWith("agent://")) {
      return "agent";
    }
    return "function";
  }

  private static long nanos(Instant at) {
    return TimeUnit.SECONDS.toNanos(at.getEpochSecond()) + at.getNano();
  }

  /** Exports what is queued and stops the export thread. */
  @Override
  public void close() {
    closed = true;
    worker.interrupt();
    try {
      worker.join(EXPORT_TIMEOUT.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    exporter.shutdown().join(EXPORT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** One finished span, as the OTLP exporter reads it. */
  private record ExportedSpan(
      String name,
      SpanKind kind,
      SpanContext context,
      SpanContext parentContext,
      StatusData status,
      long startNanos,
      long endNanos,
      Attributes attributes,
      Resource resource)
      implements SpanData {

    @Override
    public String getName() {
      return name;
    }

    @Override
    public SpanKind getKind() {
      return kind;
    }

    @Override
    public SpanContext getSpanContext() {
      return context;
    }

    @Override
    public SpanContext getParentSpanContext() {
      return parentContext;
    }

    @Override
    public StatusData getStatus() {
      return status;
    }

    @Override
    public long getStartEpochNanos() {
      return startNanos;
    }

    @Override
    public Attributes getAttributes() {
      return attributes;
    }

    @Override
    public List<EventData> getEvents() {
      return List.of();
    }

    @Override
    public List<LinkData> getLinks() {
      return List.of();
    }

    @Override
    public long getEndEpochNanos() {
      return endNanos;
    }

    @Override
    public boolean hasEnded() {
      return true;
    }

    @Override
    public int getTotalRecordedEvents() {
      return 0;
    }

    @Override
    public int getTotalRecordedLinks() {
      return 0;
    }

    @Override
    public int getTotalAttributeCount() {
      return attributes.size();
    }

    @Override
    @SuppressWarnings("deprecation")
    public InstrumentationLibraryInfo getInstrumentationLibraryInfo() {
      return InstrumentationLibraryInfo.create(SCOPE.getName(), null);
    }

    @Override
    public InstrumentationScopeInfo getInstrumentationScopeInfo() {
      return SCOPE;
    }

    @Override
    public Resource getResource() {
      return resource;
    }
  }
}
