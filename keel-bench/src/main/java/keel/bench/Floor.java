package keel.bench;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import keel.core.EventCodec;
import tools.jackson.databind.JsonNode;

/**
 * The framework-free floor: the agent loop a programmer would write by hand against an OpenAI
 * chat-completions server, with no persistence. Each session sends the same streaming requests
 * Keel's OpenAI provider sends (system and user messages, the {@code time_now} tool declared, the
 * messages array growing with each assistant tool call and tool result), reads the streamed
 * chunks, runs {@code time_now} locally, and repeats until the model answers with text.
 *
 * <p>Thread-safe: each session runs on its own virtual thread; the {@link HttpClient} is shared.
 */
final class Floor {

  static final String INSTRUCTIONS = "You are a benchmark agent. Call time_now when asked.";
  private static final String TOOLS =
      "[{\"type\":\"function\",\"function\":{\"name\":\"time_now\",\"description\":\"Returns the current date and"
          + " time in UTC (ISO-8601), the day of the week and the Unix time.\",\"parameters\":{\"type\":\"object\","
          + "\"properties\":{}}}}]";

  private final HttpClient http =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
  private final URI endpoint;

  Floor(String baseUrl) {
    this.endpoint = URI.create(baseUrl + "/chat/completions");
  }

  /** What one run of N sessions did. */
  record Run(long wallNanos, long steps, long modelCalls) {}

  /** Runs {@code sessions} loops of {@code steps} tool steps at once; returns when all are done. */
  Run run(int sessions, int steps) throws Exception {
    return concurrently(sessions, (id, toolSteps, calls) -> session(steps, toolSteps, calls));
  }

  /** One agent loop of a benchmark variant, counting its tool steps and model calls. */
  @FunctionalInterface
  interface Loop {
    void run(int sessionIndex, AtomicLong toolSteps, AtomicLong calls) throws Exception;
  }

  /** Runs {@code sessions} loops at once on virtual threads and times them. */
  static Run concurrently(int sessions, Loop loop) throws Exception {
    AtomicLong toolSteps = new AtomicLong();
    AtomicLong calls = new AtomicLong();
    long t0 = System.nanoTime();
    try (ExecutorService ex = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> fs = new ArrayList<>();
      for (int i = 0; i < sessions; i++) {
        int id = i;
        fs.add(ex.submit(() -> {
          loop.run(id, toolSteps, calls);
          return null;
        }));
      }
      for (Future<?> f : fs) {
        f.get();
      }
    }
    return new Run(System.nanoTime() - t0, toolSteps.get(), calls.get());
  }

  private Void session(int k, AtomicLong toolSteps, AtomicLong calls) throws IOException, InterruptedException {
    List<String> messages = new ArrayList<>();
    messages.add("{\"role\":\"system\",\"content\":" + quote(INSTRUCTIONS) + "}");
    messages.add("{\"role\":\"user\",\"content\":" + quote("steps=" + k + " run the benchmark") + "}");
    for (int turn = 0; turn <= k + 1; turn++) {
      String body =
          "{\"model\":\"gpt-4o-mini\",\"messages\":["
              + String.join(",", messages)
              + "],\"stream\":true,\"stream_options\":{\"include_usage\":true},\"tools\":"
              + TOOLS
              + "}";
      HttpRequest req =
          HttpRequest.newBuilder(endpoint)
              .timeout(Duration.ofSeconds(60))
              .header("Content-Type", "application/json")
              .header("Authorization", "Bearer floor")
              .POST(HttpRequest.BodyPublishers.ofString(body))
              .build();
      HttpResponse<Stream<String>> r = http.send(req, HttpResponse.BodyHandlers.ofLines());
      calls.incrementAndGet();
      if (r.statusCode() != 200) {
        throw new IllegalStateException("the fake answered " + r.statusCode());
      }
      StringBuilder text = new StringBuilder();
      List<String[]> toolCalls = new ArrayList<>(); // id, name, arguments
      try (Stream<String> lines = r.body()) {
        for (Iterator<String> it = lines.iterator(); it.hasNext(); ) {
          String line = it.next();
          if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
            continue;
          }
          JsonNode chunk = EventCodec.mapper().readTree(line.substring(6));
          JsonNode choices = chunk.path("choices");
          if (choices.isEmpty()) {
            continue;
          }
          JsonNode delta = choices.get(0).path("delta");
          if (delta.path("content").isString()) {
            text.append(delta.get("content").asString());
          }
          for (JsonNode tc : delta.path("tool_calls")) {
            int index = tc.path("index").asInt();
            while (toolCalls.size() <= index) {
              toolCalls.add(new String[] {"", "", ""});
            }
            String[] c = toolCalls.get(index);
            if (tc.has("id")) {
              c[0] = tc.get("id").asString();
            }
            JsonNode fn = tc.path("function");
            if (fn.has("name")) {
              c[1] = fn.get("name").asString();
            }
            if (fn.has("arguments")) {
              c[2] = c[2] + fn.get("arguments").asString();
            }
          }
        }
      }
      if (toolCalls.isEmpty()) {
        if (!text.toString().equals("done after " + k + " steps")) {
          throw new IllegalStateException("unexpected final answer: " + text);
        }
        return null;
      }
      StringBuilder assistant = new StringBuilder("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[");
      List<String> results = new ArrayList<>();
      for (int i = 0; i < toolCalls.size(); i++) {
        String[] c = toolCalls.get(i);
        if (i > 0) {
          assistant.append(',');
        }
        assistant
            .append("{\"id\":")
            .append(quote(c[0]))
            .append(",\"type\":\"function\",\"function\":{\"name\":")
            .append(quote(c[1]))
            .append(",\"arguments\":")
            .append(quote(c[2]))
            .append("}}");
        results.add("{\"role\":\"tool\",\"tool_call_id\":" + quote(c[0]) + ",\"content\":" + quote(timeNow()) + "}");
        toolSteps.incrementAndGet();
      }
      messages.add(assistant.append("]}").toString());
      messages.addAll(results);
    }
    throw new IllegalStateException("the model did not answer after " + (k + 1) + " tool steps");
  }

  /** What Keel's {@code time_now} returns. */
  static String timeNow() {
    ZonedDateTime now = ZonedDateTime.now(ZoneOffset.UTC);
    return "{\"utc\":" + quote(now.toInstant().toString()) + ",\"day_of_week\":" + quote(now.getDayOfWeek().toString())
        + ",\"unix\":" + now.toEpochSecond() + "}";
  }

  static String quote(String s) {
    StringBuilder b = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (c < 0x20) {
            b.append(String.format("\\u%04x", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"').toString();
  }
}
