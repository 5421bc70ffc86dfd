package keel.testkit;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An OpenTelemetry collector for tests: a real HTTP server on 127.0.0.1 that accepts OTLP/HTTP
 * trace exports ({@code POST /v1/traces}, {@code application/x-protobuf}) and decodes the protobuf
 * {@code ExportTraceServiceRequest} from the wire by hand (the OTLP schema's field numbers), so a
 * test sees exactly what a real collector would receive. It can refuse the next requests with 503
 * to test retries.
 *
 * <p>Thread-safe: requests are served on virtual threads; the received spans are guarded by a lock.
 */
public final class FakeOtlpCollector implements AutoCloseable {

  /**
   * One received span.
   *
   * @param traceId 32 hex digits
   * @param spanId 16 hex digits
   * @param parentSpanId 16 hex digits, or empty for a root span
   * @param kind the OTLP span kind number (1 internal, 2 server, 3 client, …)
   * @param attributes values as strings, longs, doubles, booleans or lists of strings
   * @param statusCode 0 unset, 1 ok, 2 error
   * @param resource the resource attributes of the batch it came in
   */
  public record Span(
      String traceId,
      String spanId,
      String parentSpanId,
      String name,
      int kind,
      long startNanos,
      long endNanos,
      Map<String, Object> attributes,
      int statusCode,
      Map<String, Object> resource) {
    public Span {
      attributes = Map.copyOf(attributes);
      resource = Map.copyOf(resource);
    }

    /** An attribute as a string, or empty. */
    public Optional<String> attribute(String key) {
      return Optional.ofNullable(attributes.get(key)).map(Object::toString);
    }
  }

  private final HttpServer server;
  /** Guards {@link #spans}. */
  private final ReentrantLock lock = new ReentrantLock();
  private final List<Span> spans = new ArrayList<>();
  private final AtomicInteger refuse = new AtomicInteger();
  private final AtomicInteger requests = new AtomicInteger();

  private FakeOtlpCollector(HttpServer server) {
    this.server = server;
  }

  /** Starts a collector on a free port of 127.0.0.1. */
  public static FakeOtlpCollector start() {
    try {
      HttpServer http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
      FakeOtlpCollector c = new FakeOtlpCollector(http);
      http.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
      http.createContext("/v1/traces", exchange -> {
        try (exchange; InputStream in = exchange.getRequestBody()) {
          byte[] body = in.readAllBytes();
          c.requests.incrementAndGet();
          if (!exchange.getRequestMethod().equals("POST")
              || !String.valueOf(exchange.getRequestHeaders().getFirst("Content-Type")).startsWith("application/x-protobuf")) {
            exchange.sendResponseHeaders(415, -1);
            return;
          }
          if (c.refuse.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            exchange.sendResponseHeaders(503, -1);
            return;
          }
          List<Span> decoded = decodeRequest(body);
          c.lock.lock();
          try {
            c.spans.addAll(decoded);
          } finally {
            c.lock.unlock();
          }
          exchange.getResponseHeaders().set("Content-Type", "application/x-protobuf");
          exchange.sendResponseHeaders(200, -1); // an empty ExportTraceServiceResponse
        }
      });
      http.start();
      return c;
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** The base URL to configure as the OTLP endpoint, e.g. {@code http://127.0.0.1:4711}. */
  public String baseUrl() {
    return "http://127.0.0.1:" + server.getAddress().getPort();
  }

  /** Every span received so far, in arrival order. */
  public List<Span> spans() {
    lock.lock();
    try {
      return List.copyOf(spans);
    } finally {
      lock.unlock();
    }
  }

  /** How many export requests arrived (refused ones included). */
  public int requestCount() {
    return requests.get();
  }

  /** Answers the next {@code n} export requests with 503. */
  public FakeOtlpCollector refuseNext(int n) {
    refuse.set(n);
    return this;
  }

  @Override
  public void close() {
    server.stop(0);
  }

  // ------------------------------------------------------------------ protobuf wire decoding

  /** A field of a protobuf message: its number, wire type and value (long or byte[]). */
  private record Field(int number, int wireType, long varint, byte[] bytes) {}

  private static List<Field> fields(byte[] message) {
    List<Field> out = new ArrayList<>();
    int[] pos = {0};
    while (pos[0] < message.length) {
      long key = varint(message, pos);
      int number = (int) (key >>> 3);
      int wire = (int) (key & 7);
      switch (wire) {
        case 0 -> out.add(new Field(number, wire, varint(message, pos), null));
        case 1 -> {
          long v = ByteBuffer.wrap(message, pos[0], 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
          pos[0] += 8;
          out.add(new Field(number, wire, v, null));
        }
        case 2 -> {
          int len = (int) varint(message, pos);
          byte[] b = java.util.Arrays.copyOfRange(message, pos[0], pos[0] + len);
          pos[0] += len;
          out.add(new Field(number, wire, 0, b));
        }
        case 5 -> {
          long v = ByteBuffer.wrap(message, pos[0], 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
          pos[0] += 4;
          out.add(new Field(number, wire, v, null));
        }
        default -> throw new IllegalArgumentException("unsupported protobuf wire type " + wire + " at byte " + pos[0]);
      }
    }
    return out;
  }

  private static long varint(byte[] b, int[] pos) {
    long result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      byte x = b[pos[0]++];
      result |= (long) (x & 0x7f) << shift;
      if ((x & 0x80) == 0) {
        return result;
      }
    }
    throw new IllegalArgumentException("malformed varint");
  }

  /** ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; } */
  static List<Span> decodeRequest(byte[] body) {
    List<Span> out = new ArrayList<>();
    for (Field rs : fields(body)) {
      if (rs.number() != 1) {
        continue;
      }
      // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
      Map<String, Object> resource = Map.of();
      List<byte[]> scopes = new ArrayList<>();
      for (Field f : fields(rs.bytes())) {
        if (f.number() == 1) {
          resource = attributes(fields(f.bytes()), 1); // Resource { repeated KeyValue attributes = 1; }
        } else if (f.number() == 2) {
          scopes.add(f.bytes());
        }
      }
      for (byte[] scope : scopes) {
        // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
        for (Field f : fields(scope)) {
          if (f.number() == 2) {
            out.add(span(f.bytes(), resource));
          }
        }
      }
    }
    return out;
  }

  private static Span span(byte[] b, Map<String, Object> resource) {
    String traceId = "";
    String spanId = "";
    String parent = "";
    String name = "";
    int kind = 0;
    long start = 0;
    long end = 0;
    int status = 0;
    List<Field> fs = fields(b);
    for (Field f : fs) {
      switch (f.number()) {
        case 1 -> traceId = HexFormat.of().formatHex(f.bytes());
        case 2 -> spanId = HexFormat.of().formatHex(f.bytes());
        case 4 -> parent = HexFormat.of().formatHex(f.bytes());
        case 5 -> name = new String(f.bytes(), StandardCharsets.UTF_8);
        case 6 -> kind = (int) f.varint();
        case 7 -> start = f.varint();
        case 8 -> end = f.varint();
        case 15 -> {
          for (Field s : fields(f.bytes())) {
            if (s.number() == 3) {
              status = (int) s.varint();
            }
          }
        }
        default -> {
          // trace_state, attributes (below), events, links, dropped counts, flags
        }
      }
    }
    return new Span(traceId, spanId, parent, name, kind, start, end, attributes(fs, 9), status, resource);
  }

  /** The KeyValue fields numbered {@code number} of a message. */
  private static Map<String, Object> attributes(List<Field> fs, int number) {
    Map<String, Object> out = new LinkedHashMap<>();
    for (Field f : fs) {
      if (f.number() != number) {
        continue;
      }
      String key = "";
      Object value = null;
      for (Field kv : fields(f.bytes())) {
        if (kv.number() == 1) {
          key = new String(kv.bytes(), StandardCharsets.UTF_8);
        } else if (kv.number() == 2) {
          value = anyValue(kv.bytes());
        }
      }
      out.put(key, value == null ? "" : value);
    }
    return out;
  }

  /** AnyValue { string 1; bool 2; int64 3; double 4; ArrayValue 5 { repeated AnyValue values = 1; } } */
  private static Object anyValue(byte[] b) {
    for (Field f : fields(b)) {
      switch (f.number()) {
        case 1 -> {
          return new String(f.bytes(), StandardCharsets.UTF_8);
        }
        case 2 -> {
          return f.varint() != 0;
        }
        case 3 -> {
          return f.varint();
        }
        case 4 -> {
          return Double.longBitsToDouble(f.varint());
        }
        case 5 -> {
          List<Object> values = new ArrayList<>();
          for (Field v : fields(f.bytes())) {
            if (v.number() == 1) {
              values.add(anyValue(v.bytes()));
            }
          }
          return List.copyOf(values);
        }
        default -> {
          // kvlist and bytes values are not used by Keel
        }
      }
    }
    return "";
  }
}
