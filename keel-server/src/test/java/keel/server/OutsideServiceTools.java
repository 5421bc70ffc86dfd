package keel.server;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import keel.execution.Tool;
import keel.execution.ToolContext;
import keel.execution.ToolEnvironment;
import keel.execution.ToolOutput;
import keel.execution.ToolProvider;
import keel.execution.ToolSpec;

/**
 * A test fixture: {@code internal://outside}, a tool ({@code call_outside}) that calls a service
 * outside Keel at {@code KEEL_TEST_OUTSIDE_URL}, presenting the session's token as a bearer
 * credential, the way a tool acting for an agent would. The service's answer is the result. Offers
 * nothing when the variable is not set.
 */
public final class OutsideServiceTools implements ToolProvider {

  @Override
  public List<Tool> tools(ToolEnvironment env) {
    String url = env.environment().get("KEEL_TEST_OUTSIDE_URL");
    return url == null ? List.of() : List.of(new CallOutside(URI.create(url)));
  }

  private record CallOutside(URI url) implements Tool {
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @Override
    public ToolSpec spec() {
      return new ToolSpec("call_outside", "Calls a service outside Keel as this agent.", "{\"type\":\"object\"}");
    }

    @Override
    public String capability() {
      return "internal://outside";
    }

    @Override
    public boolean idempotent() {
      return true;
    }

    @Override
    public ToolOutput call(ToolContext context, String arguments) {
      try {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(10))
            .header("Authorization", "Bearer " + context.identity().compact())
            .header("X-Keel-Session", context.sessionId()).GET().build(), HttpResponse.BodyHandlers.ofString());
        return r.statusCode() == 200 ? ToolOutput.ok(r.body()) : ToolOutput.error(r.statusCode() + ": " + r.body());
      } catch (IOException e) {
        return ToolOutput.error("the outside service cannot be reached: " + e.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return ToolOutput.error("interrupted");
      }
    }
  }
}
