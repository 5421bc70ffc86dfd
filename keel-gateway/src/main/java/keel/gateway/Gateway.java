package keel.gateway;

import io.modelcontextprotocol.spec.McpSchema;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.locks.ReentrantLock;
import keel.core.McpServerDescriptor;
import keel.data.ToolCatalogStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * The MCP gateway: the upstream servers of the active {@code McpServer} revisions and the catalog
 * of their tools.
 *
 * <p>Servers start on first use: the first {@link #catalog()} (a session about to call a model
 * needs its tools) or {@link #call} starts each server that is not running and lists its tools. A
 * stdio server is a child process with only the environment its descriptor passes (plus {@code
 * PATH}), in its own working directory {@code <data>/mcp/<server>/}. A server that crashes, hangs
 * or answers garbage fails the calls in flight with an error result, and is started again on its
 * next use after an exponential backoff.
 *
 * <p>Catalog: each tool is hashed over the canonical JSON of its input and output schema; a hash
 * not seen before is a new version, persisted in the {@link ToolCatalogStore} and reported to the
 * {@link CatalogListener}. A server's tool list is read again whenever it says it changed ({@code
 * notifications/tools/list_changed}) and whenever it is started again.
 *
 * <p>Thread-safe. {@link #catalogLock} guards the upstream set and the catalog; calls run
 * concurrently, each on its caller's thread; listener calls happen outside the lock. Lock order: an
 * upstream's own lock may be held while taking {@link #catalogLock} (a starting upstream hands its
 * tool list to the catalog), never the other way round.
 */
public final class Gateway implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(Gateway.class);
  private static final JsonMapper JSON =
      JsonMapper.builder().enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS).build();

  /** The variables every stdio server gets besides those its descriptor passes. */
  public static final List<String> ALWAYS_PASSED = List.of("PATH");

  private final ToolCatalogStore store;
  private final Path dataDir;
  private final Map<String, String> environment;
  private final Clock clock;
  private final GatewaySettings settings;
  private final CatalogListener listener;

  private final ReentrantLock catalogLock = new ReentrantLock();
  /** By server name. */
  private final Map<String, Upstream> upstreams = new TreeMap<>();
  /** By server name, then tool name. */
  private final Map<String, Map<String, CatalogEntry>> entries = new HashMap<>();
  /** What each server's descriptor or tool list could not honour. */
  private final Map<String, List<String>> problems = new HashMap<>();
  private final Map<String, Boolean> listed = new HashMap<>();
  /** First listings in flight, by server name (see {@link #firstListings}). */
  private final Map<String, java.util.concurrent.CompletableFuture<Void>> firstListing =
      new java.util.concurrent.ConcurrentHashMap<>();

  /**
   * @param store where tool versions are kept
   * @param dataDir the server's data directory; stdio servers work in {@code <dataDir>/mcp/<server>/}
   * @param environment the server's environment and secrets: {@code secret:} references in
   *     descriptors are resolved here, and {@code PATH} is passed on to stdio servers
   * @param clock for backoff, rate limits and version times
   * @param settings defaults for what descriptors leave out
   * @param listener hears of catalog changes
   */
  public Gateway(
      ToolCatalogStore store,
      Path dataDir,
      Map<String, String> environment,
      Clock clock,
      GatewaySettings settings,
      CatalogListener listener) {
    this.store = Objects.requireNonNull(store, "store");
    this.dataDir = Objects.requireNonNull(dataDir, "dataDir");
    this.environment = Map.copyOf(environment);
    this.clock = Objects.requireNonNull(clock, "clock");
    this.settings = Objects.requireNonNull(settings, "settings");
    this.listener = Objects.requireNonNull(listener, "listener");
  }

  /**
   * Makes these the gateway's servers. A server whose descriptor is unchanged keeps running; one
   * that changed is stopped and starts again (with its new settings) on its next use; one that is
   * gone is stopped and its tools leave the catalog.
   */
  public void configure(List<McpServerDescriptor> servers) {
    List<CatalogChange> changes = new ArrayList<>();
    List<Upstream> stopped = new ArrayList<>();
    catalogLock.lock();
    try {
      Map<String, McpServerDescriptor> wanted = new LinkedHashMap<>();
      for (McpServerDescriptor d : servers) {
        wanted.put(d.metadata().name(), d);
      }
      for (var it = upstreams.entrySet().iterator(); it.hasNext(); ) {
        var e = it.next();
        McpServerDescriptor next = wanted.get(e.getKey());
        if (next == null || !next.equals(e.getValue().descriptor())) {
          it.remove();
          stopped.add(e.getValue());
          listed.remove(e.getKey());
          problems.remove(e.getKey());
          Map<String, CatalogEntry> gone = entries.remove(e.getKey());
          if (gone != null && next == null) {
            gone.values().forEach(c -> changes.add(new CatalogChange.Removed(c.server(), c.tool(), c.version())));
          } else if (gone != null) {
            // a changed server keeps its tools listed until it is listed again
            entries.put(e.getKey(), gone);
          }
        }
      }
      for (McpServerDescriptor d : wanted.values()) {
        upstreams.computeIfAbsent(d.metadata().name(), n -> upstream(d));
      }
    } finally {
      catalogLock.unlock();
    }
    stopped.forEach(Upstream::close);
    notify(changes);
  }

  /** Header names whose literal values are credentials all the same. */
  private static final java.util.regex.Pattern CREDENTIAL_HEADER =
      java.util.regex.Pattern.compile("(?i)authorization|token|key|secret|password|cookie");

  private Upstream upstream(McpServerDescriptor d) {
    String name = d.metadata().name();
    McpServerDescriptor.Spec spec = d.spec();
    List<String> unresolved = new ArrayList<>();
    Map<String, String> env = new LinkedHashMap<>();
    Map<String, String> headers = new LinkedHashMap<>();
    if (spec.transport().equals("stdio")) {
      for (String v : ALWAYS_PASSED) {
        String value = environment.get(v);
        if (value != null) {
          env.put(v, value);
        }
      }
    }
    spec.env().forEach((k, v) -> resolve(v).ifPresentOrElse(value -> env.put(k, value), () -> unresolved.add("env " + k)));
    spec.headers().forEach((k, v) -> resolve(v).ifPresentOrElse(value -> headers.put(k, value), () -> unresolved.add("header " + k)));
    // what must never come back out of the gateway: every secret's value, and the value of a
    // credential header even when written literally; a bearer token also bare, without its scheme
    List<String> secrets = new ArrayList<>();
    spec.env().forEach((k, v) -> v.secret().map(environment::get).ifPresent(secrets::add));
    spec.headers().forEach((k, v) -> {
      if (v.secret().isPresent() || CREDENTIAL_HEADER.matcher(k).find()) {
        String h = headers.get(k);
        if (h != null) {
          secrets.add(h);
          int space = h.indexOf(' ');
          if (space > 0) {
            secrets.add(h.substring(space + 1).strip());
          }
        }
      }
    });
    List<String> serverProblems = new ArrayList<>();
    for (String u : unresolved) {
      serverProblems.add(u + ": its secret is not set on the server (secrets file or environment)");
    }
    problems.put(name, serverProblems);
    Path dir = dataDir.resolve("mcp").resolve(name);
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create the working directory of MCP server " + name + ": " + dir, e);
    }
    return new Upstream(d, env, headers, dir, settings, clock, tools -> listed(name, tools), () -> relistLater(name),
        new Redactor(secrets));
  }

  private Optional<String> resolve(McpServerDescriptor.ValueSource v) {
    if (v.value().isPresent()) {
      return v.value();
    }
    return v.secret().map(environment::get);
  }

  /**
   * The catalog now: every tool of every server, sorted by catalog name. Starts (and lists) each
   * server not yet listed that is not backing off; a server that cannot be started is skipped, its
   * failure in {@link #servers()}.
   */
  public List<CatalogEntry> catalog() {
    return catalogOf(null);
  }

  /**
   * The catalog's tools of these servers, starting those of them not yet listed (as {@link
   * #catalog()} does for all).
   */
  public List<CatalogEntry> catalog(java.util.Set<String> servers) {
    return catalogOf(java.util.Set.copyOf(servers));
  }

  /** The catalog of these servers, or of all when {@code servers} is null. */
  private List<CatalogEntry> catalogOf(java.util.Set<String> servers) {
    List<Upstream> unlisted = new ArrayList<>();
    catalogLock.lock();
    try {
      for (Upstream u : upstreams.values()) {
        if ((servers == null || servers.contains(u.name())) && !listed.getOrDefault(u.name(), false)) {
          unlisted.add(u);
        }
      }
    } finally {
      catalogLock.unlock();
    }
    // Lock order: an upstream's lock is never taken under catalogLock, because a starting upstream
    // holds its own lock while it hands its tool list to listed(), which takes catalogLock.
    List<Upstream> toList = unlisted.stream().filter(Upstream::startable).toList();
    firstListings(toList);
    List<CatalogEntry> all = current();
    return servers == null ? all : all.stream().filter(e -> servers.contains(e.server())).toList();
  }

  /** The catalog as last listed, without starting anything. */
  public List<CatalogEntry> current() {
    catalogLock.lock();
    try {
      return entries.values().stream()
          .flatMap(m -> m.values().stream())
          .sorted(Comparator.comparing(CatalogEntry::catalogName))
          .toList();
    } finally {
      catalogLock.unlock();
    }
  }

  /**
   * Lists servers not listed yet, joining a first listing already in flight instead of sending
   * another: when many sessions start at once, each asks for the catalog before the first listing
   * is in, and without this every one of them sent its own {@code tools/list} to the server (a
   * thousand at once in the approval-storm benchmark, which the server answered with resets).
   */
  private void firstListings(List<Upstream> servers) {
    List<java.util.concurrent.CompletableFuture<Void>> waits = new ArrayList<>();
    for (Upstream u : servers) {
      java.util.concurrent.CompletableFuture<Void> mine = new java.util.concurrent.CompletableFuture<>();
      java.util.concurrent.CompletableFuture<Void> running = firstListing.putIfAbsent(u.name(), mine);
      if (running != null) {
        waits.add(running);
        continue;
      }
      waits.add(mine);
      Thread.ofVirtual().name("mcp-list-" + u.name()).start(() -> {
        try {
          listAll(List.of(u));
        } finally {
          firstListing.remove(u.name(), mine);
          mine.complete(null);
        }
      });
    }
    for (var w : waits) {
      try {
        w.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      } catch (java.util.concurrent.ExecutionException e) {
        // listAll logs its own failures and never completes exceptionally
      }
    }
  }

  private void listAll(List<Upstream> servers) {
    if (servers.isEmpty()) {
      return;
    }
    List<Thread> threads = new ArrayList<>();
    for (Upstream u : servers) {
      threads.add(Thread.ofVirtual().name("mcp-list-" + u.name()).start(() -> {
        try {
          u.list();
        } catch (UpstreamException e) {
          LOG.warn("listing the tools of MCP server {} failed: {}", u.name(), e.getMessage());
        } catch (RuntimeException e) {
          LOG.warn("listing the tools of MCP server {} failed", u.name(), e);
        }
      }));
    }
    for (Thread t : threads) {
      try {
        t.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** Reads a server's tool list again now (starting it if needed). */
  public void refresh(String server) {
    Upstream u;
    catalogLock.lock();
    try {
      u = upstreams.get(server);
    } finally {
      catalogLock.unlock();
    }
    if (u != null) {
      listAll(List.of(u));
    }
  }

  private void relistLater(String server) {
    Thread.ofVirtual().name("mcp-relist-" + server).start(() -> refresh(server));
  }

  /** The catalog entry models call by this name, in the current catalog. */
  public Optional<CatalogEntry> byModelName(String modelName) {
    catalogLock.lock();
    try {
      for (Map<String, CatalogEntry> m : entries.values()) {
        for (CatalogEntry e : m.values()) {
          if (e.modelName().equals(modelName)) {
            return Optional.of(e);
          }
        }
      }
      return Optional.empty();
    } finally {
      catalogLock.unlock();
    }
  }

  /** How each server is doing, by name. */
  public List<ServerStatus> servers() {
    List<Upstream> all;
    Map<String, List<String>> problemsNow;
    catalogLock.lock();
    try {
      all = List.copyOf(upstreams.values());
      problemsNow = Map.copyOf(problems);
    } finally {
      catalogLock.unlock();
    }
    // outside catalogLock: see catalogOf for the lock order
    return all.stream().map(u -> u.status(problemsNow.getOrDefault(u.name(), List.of()))).toList();
  }

  /** A server's tool list was read: the catalog takes it in. */
  private void listed(String server, List<McpSchema.Tool> tools) {
    List<CatalogChange> changes = new ArrayList<>();
    catalogLock.lock();
    try {
      Upstream u = upstreams.get(server);
      if (u == null) {
        return;
      }
      McpServerDescriptor d = u.descriptor();
      Map<String, McpServerDescriptor.ToolSettings> declared = d.spec().tools();
      List<String> notes = new ArrayList<>(problems.getOrDefault(server, List.of()).stream()
          .filter(p -> p.startsWith("env ") || p.startsWith("header ")).toList());
      Map<String, CatalogEntry> before = entries.getOrDefault(server, Map.of());
      Map<String, CatalogEntry> after = new TreeMap<>();
      Map<String, String> modelNames = new HashMap<>();
      entries.forEach((s, m) -> {
        if (!s.equals(server)) {
          m.values().forEach(e -> modelNames.put(e.modelName(), e.catalogName()));
        }
      });
      Map<String, String> ownNames = new HashMap<>();
      List<String> colliding = new ArrayList<>();
      for (McpSchema.Tool t : tools) {
        if (!declared.isEmpty() && !declared.containsKey(t.name())) {
          continue;
        }
        String modelName = ModelNames.of(server, t.name());
        String other = modelNames.get(modelName);
        String own = ownNames.put(modelName, t.name());
        if (other != null || own != null) {
          colliding.add(t.name());
          if (own != null) {
            colliding.add(own);
          }
          notes.add("tool " + server + "/" + t.name() + " is not offered: its model name " + modelName
              + " is also that of " + (other != null ? other : server + "/" + own));
        }
      }
      for (McpSchema.Tool t : tools) {
        if ((!declared.isEmpty() && !declared.containsKey(t.name())) || colliding.contains(t.name())) {
          continue;
        }
        CatalogEntry previous = before.get(t.name());
        // without a previous entry (this gateway's first listing), the newest stored version is
        // what the tool was when Keel last saw it
        Optional<ToolCatalogStore.ToolVersion> stored =
            previous == null ? store.latest(server, t.name()) : Optional.empty();
        CatalogEntry entry = entry(d, t, previous);
        after.put(t.name(), entry);
        if (previous == null) {
          changes.add(new CatalogChange.Added(entry));
        }
        if (previous != null && previous.version() != entry.version()) {
          changes.add(new CatalogChange.Changed(entry, previous.version(), previous.hash()));
        } else if (stored.isPresent() && stored.get().version() != entry.version()) {
          // changed while this gateway was not running
          changes.add(new CatalogChange.Changed(entry, stored.get().version(), stored.get().hash()));
        }
      }
      for (String name : declared.keySet()) {
        if (tools.stream().noneMatch(t -> t.name().equals(name))) {
          notes.add("tool " + name + " is declared in the descriptor but the server does not list it");
        }
      }
      for (CatalogEntry gone : before.values()) {
        if (!after.containsKey(gone.tool())) {
          changes.add(new CatalogChange.Removed(server, gone.tool(), gone.version()));
        }
      }
      entries.put(server, after);
      problems.put(server, notes);
      listed.put(server, true);
    } finally {
      catalogLock.unlock();
    }
    notify(changes);
  }

  private CatalogEntry entry(McpServerDescriptor d, McpSchema.Tool t, CatalogEntry previous) {
    String server = d.metadata().name();
    String inputSchema = canonical(t.inputSchema());
    Optional<String> outputSchema = Optional.ofNullable(t.outputSchema()).map(Gateway::canonical);
    ObjectNode schema = JSON.createObjectNode();
    schema.set("inputSchema", JSON.readTree(inputSchema));
    outputSchema.ifPresent(o -> schema.set("outputSchema", JSON.readTree(o)));
    String schemaJson = JSON.writeValueAsString(schema);
    String hash = "sha256:" + ModelNames.sha256(schemaJson);
    Instant now = clock.instant();
    ToolCatalogStore.ToolVersion version = store.record(server, t.name(), hash, schemaJson, now);
    List<ToolCatalogStore.ToolVersion> all = store.versions(server, t.name());
    Optional<Instant> changedAt;
    if (previous != null && previous.version() != version.version()) {
      changedAt = Optional.of(now);
    } else if (previous != null) {
      changedAt = previous.changedAt();
    } else {
      changedAt = all.size() > 1 ? Optional.of(version.recordedAt()) : Optional.empty();
    }
    McpServerDescriptor.ToolSettings declared = d.spec().tools().get(t.name());
    SideEffects sideEffects = declared == null ? SideEffects.SIDE_EFFECTING : SideEffects.ofWireName(declared.sideEffects());
    BigDecimal price = declared == null ? BigDecimal.ZERO : declared.priceUsdPerCall().orElse(BigDecimal.ZERO);
    Optional<String> valueUsd = declared == null ? Optional.empty() : declared.valueUsd();
    String description = t.description() == null ? (t.title() == null ? "" : t.title()) : t.description();
    return new CatalogEntry(
        server, t.name(), d.metadata().owner(), ModelNames.of(server, t.name()), description,
        inputSchema, outputSchema, version.version(), hash,
        all.stream().map(ToolCatalogStore.ToolVersion::version).toList(), changedAt, sideEffects, price, valueUsd);
  }

  /** A schema as canonical JSON: keys sorted at every level, no insignificant white space. */
  static String canonical(Object schema) {
    JsonNode tree = JSON.valueToTree(schema);
    return JSON.writeValueAsString(JSON.treeToValue(tree, Object.class));
  }

  /**
   * Calls a tool of the catalog. Never throws for what the server or the arguments did: every
   * failure is an error result saying what went wrong and where.
   *
   * @param catalogName {@code <server>/<tool>}
   * @param arguments the arguments object as JSON text
   * @param meta sent in the request's {@code _meta}
   */
  public CallResult call(String catalogName, String arguments, CallMeta meta) {
    int slash = catalogName.indexOf('/');
    if (slash <= 0) {
      return CallResult.failure("\"" + catalogName + "\" is not a catalog name <server>/<tool>");
    }
    String server = catalogName.substring(0, slash);
    String tool = catalogName.substring(slash + 1);
    Upstream u;
    boolean known;
    catalogLock.lock();
    try {
      u = upstreams.get(server);
      known = entries.getOrDefault(server, Map.of()).containsKey(tool);
    } finally {
      catalogLock.unlock();
    }
    if (u == null) {
      return CallResult.failure("there is no MCP server \"" + server + "\" in the gateway");
    }
    if (!known) {
      return CallResult.failure("the tool \"" + catalogName + "\" is not in the catalog: MCP server \"" + server
          + "\" does not offer it (any more); call only the tools you were given");
    }
    Map<String, Object> args;
    try {
      JsonNode node = JSON.readTree(arguments.isBlank() ? "{}" : arguments);
      if (!node.isObject()) {
        return CallResult.failure("the arguments of " + catalogName + " must be a JSON object, got " + node.getNodeType());
      }
      @SuppressWarnings("unchecked")
      Map<String, Object> map = JSON.treeToValue(node, Map.class);
      args = map;
    } catch (JacksonException e) {
      return CallResult.failure("the arguments of " + catalogName + " are not valid JSON: " + e.getOriginalMessage());
    }
    Optional<Instant> rateLimited = u.takeRate();
    if (rateLimited.isPresent()) {
      long ms = Math.max(1, Duration.between(clock.instant(), rateLimited.get()).toMillis());
      return CallResult.failure("MCP server \"" + server + "\" allows " + u.descriptor().spec().callsPerMinute().orElseThrow()
          + " calls per minute and that many were made in the last minute; try again in " + ms + " ms");
    }
    Map<String, Object> m = new LinkedHashMap<>();
    if (!meta.traceparent().isEmpty()) {
      m.put(CallMeta.TRACEPARENT, meta.traceparent());
    }
    m.put(CallMeta.IDEMPOTENCY_KEY, meta.idempotencyKey());
    m.put(CallMeta.SESSION, meta.sessionId());
    m.put(CallMeta.PRINCIPAL, meta.principal());
    McpSchema.CallToolResult result;
    try {
      result = u.call(tool, args, m);
    } catch (UpstreamException e) {
      return CallResult.failure(u.redact(e.getMessage()));
    } catch (RuntimeException e) {
      LOG.warn("the call of {} failed unexpectedly: {}", catalogName, u.redact(e.toString()));
      return CallResult.failure(u.redact("the call of " + catalogName + " failed: " + e.getMessage()));
    }
    return u.redact(result(result));
  }

  private static CallResult result(McpSchema.CallToolResult r) {
    boolean error = Boolean.TRUE.equals(r.isError());
    Optional<String> structured = Optional.ofNullable(r.structuredContent()).map(s -> JSON.writeValueAsString(s));
    List<String> parts = new ArrayList<>();
    for (McpSchema.Content c : r.content() == null ? List.<McpSchema.Content>of() : r.content()) {
      if (c instanceof McpSchema.TextContent t) {
        parts.add(t.text());
      } else {
        parts.add("[" + c.type() + " content]");
      }
    }
    String text = structured.filter(s -> !error).orElse(String.join("\n", parts));
    return new CallResult(text, error, structured);
  }

  private void notify(List<CatalogChange> changes) {
    for (CatalogChange c : changes) {
      try {
        listener.changed(c);
      } catch (RuntimeException e) {
        LOG.warn("a catalog listener failed on {}", c, e);
      }
    }
  }

  /** Stops every server (killing stdio children). */
  @Override
  public void close() {
    List<Upstream> all;
    catalogLock.lock();
    try {
      all = new ArrayList<>(upstreams.values());
      upstreams.clear();
    } finally {
      catalogLock.unlock();
    }
    all.forEach(Upstream::close);
  }
}
