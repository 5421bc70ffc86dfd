package keel.execution;

import java.util.List;
import java.util.Optional;
import keel.core.AgentDescriptor;
import keel.core.Message;
import keel.core.Usage;

/** Test helper: model requests and responses for the gateway's building blocks. */
final class GatewayRequests {

  private GatewayRequests() {}

  static AgentDescriptor.ModelSpec model(Optional<Double> temperature) {
    return new AgentDescriptor.ModelSpec(
        "openai",
        "gpt-4o-mini",
        Optional.empty(),
        Optional.empty(),
        temperature,
        AgentDescriptor.OnDrift.WARN,
        Optional.empty(),
        List.of());
  }

  static ModelRequest request(Optional<Double> temperature, String input, List<ToolSpec> tools) {
    return new ModelRequest(
        "support",
        "s-1",
        model(temperature),
        "You answer questions.",
        List.of(new Message.User(input)),
        tools,
        0);
  }

  static ModelRequest request(String input) {
    return request(Optional.of(0.0), input, List.of());
  }

  static ToolSpec tool(String name) {
    return new ToolSpec(name, "the " + name + " tool", "{\"type\": \"object\"}");
  }

  static ModelResponse response(String text) {
    return new ModelResponse(text, List.of(), new Usage(100, 20, 0, 0), "gpt-4o-mini-2024-07-18");
  }
}
