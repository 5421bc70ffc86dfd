package keel.execution;

import java.util.ArrayList;
import java.util.List;
import keel.core.Message;
import keel.core.SessionEvent;
import keel.data.EventStore;

/**
 * The {@code replay} provider: answers from a recorded session, so that a session can be re-run
 * deterministically — in tests, and against a candidate model for shadow runs. {@code
 * spec.model.name} names the recorded session; the n-th model call of the new session is answered
 * with the n-th response the recorded session got (n counts the assistant messages already in the
 * conversation), with its text, tool calls, usage and the model version it reported.
 *
 * <p>Thread-safe: it only reads the store.
 */
final class ReplayModelProvider implements ModelProvider {

  static final String NAME = "replay";

  private final EventStore events;

  ReplayModelProvider(EventStore events) {
    this.events = events;
  }

  @Override
  public String name() {
    return NAME;
  }

  @Override
  public ModelResponse complete(ModelRequest request, ModelStream stream) {
    String source = request.model().name();
    int n = (int) request.conversation().stream().filter(m -> m instanceof Message.Assistant).count();
    List<SessionEvent.ModelResponded> recorded = responses(source);
    if (recorded.isEmpty() && events.session(source).isEmpty()) {
      throw new ModelFailure(ModelFailure.Kind.PERMANENT,
          "replay: there is no recorded session \"" + source + "\" (spec.model.name must name the session to replay)");
    }
    if (n >= recorded.size()) {
      throw new ModelFailure(ModelFailure.Kind.PERMANENT,
          "replay: session " + source + " recorded " + recorded.size() + " model responses; this is call " + (n + 1));
    }
    SessionEvent.ModelResponded r = recorded.get(n);
    if (!r.text().isEmpty()) {
      stream.onText(r.text());
    }
    return new ModelResponse(r.text(), r.toolCalls(), r.usage(), r.modelVersion());
  }

  private List<SessionEvent.ModelResponded> responses(String sessionId) {
    List<SessionEvent.ModelResponded> out = new ArrayList<>();
    events.forEachEvent(sessionId, 0, e -> {
      if (e.event() instanceof SessionEvent.ModelResponded r) {
        out.add(r);
      }
    });
    return out;
  }

}
