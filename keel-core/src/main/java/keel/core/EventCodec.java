package keel.core;

import java.util.HashMap;
import java.util.Map;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * Encodes session events and snapshots as JSON for storage and the API. The event type is stored
 * beside the JSON (see {@link SessionEvent#type()}), so the JSON holds only the event's fields.
 *
 * <p>Thread-safe.
 */
public final class EventCodec {

  private static final JsonMapper MAPPER =
      JsonMapper.builder().disable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES).build();

  private static final Map<String, Class<? extends SessionEvent>> TYPES = new HashMap<>();

  static {
    for (Class<?> c : SessionEvent.class.getPermittedSubclasses()) {
      TYPES.put(c.getSimpleName(), c.asSubclass(SessionEvent.class));
    }
  }

  private EventCodec() {}

  /** The JSON mapper Keel's own code uses for its stored formats. */
  public static JsonMapper mapper() {
    return MAPPER;
  }

  public static String encode(SessionEvent event) {
    return MAPPER.writeValueAsString(event);
  }

  /**
   * Decodes an event of the named type.
   *
   * @throws IllegalArgumentException naming the type and the problem if the JSON does not decode
   */
  public static SessionEvent decode(String type, String json) {
    Class<? extends SessionEvent> c = TYPES.get(type);
    if (c == null) {
      throw new IllegalArgumentException("unknown session event type \"" + type + "\"");
    }
    try {
      return MAPPER.readValue(json, c);
    } catch (JacksonException e) {
      throw new IllegalArgumentException(
          "cannot decode a " + type + " event: " + e.getOriginalMessage(), e);
    }
  }

  public static String encodeSnapshot(SessionState.Snapshot snapshot) {
    return MAPPER.writeValueAsString(snapshot);
  }

  public static SessionState.Snapshot decodeSnapshot(String json) {
    try {
      return MAPPER.readValue(json, SessionState.Snapshot.class);
    } catch (JacksonException e) {
      throw new IllegalArgumentException("cannot decode a snapshot: " + e.getOriginalMessage(), e);
    }
  }
}
