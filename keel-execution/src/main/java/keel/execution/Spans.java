package keel.execution;

import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * Span ids derived from what a span is about (the session and the activity), so that the trace
 * rebuilt from the event log is the same before and after a crash, and a retried activity stays in
 * its span.
 */
final class Spans {

  private Spans() {}

  static String of(String sessionId, String activity) {
    long h = 0xcbf29ce484222325L;
    for (byte b : (sessionId + "/" + activity).getBytes(StandardCharsets.UTF_8)) {
      h ^= (b & 0xff);
      h *= 0x100000001b3L;
    }
    if (h == 0) {
      h = 1;
    }
    return HexFormat.of().toHexDigits(h);
  }

  static String session(String sessionId) {
    return of(sessionId, "session");
  }

  static String input(String sessionId, String inputId) {
    return of(sessionId, "input/" + inputId);
  }

  static String model(String sessionId, long call) {
    return of(sessionId, "model/" + call);
  }

  static String tool(String sessionId, String callId) {
    return of(sessionId, "tool/" + callId);
  }
}
