package keel.core;

import java.util.Objects;

/**
 * A piece of text held by an event: inline when small, or a reference to a blob stored once in the
 * data plane when large (a tool result, a document), so that events stay small and storage grows
 * linearly with a session's length.
 */
@com.fasterxml.jackson.annotation.JsonTypeInfo(
    use = com.fasterxml.jackson.annotation.JsonTypeInfo.Id.SIMPLE_NAME,
    property = "kind")
@com.fasterxml.jackson.annotation.JsonSubTypes({
  @com.fasterxml.jackson.annotation.JsonSubTypes.Type(Content.Inline.class),
  @com.fasterxml.jackson.annotation.JsonSubTypes.Type(Content.Blob.class)
})
public sealed interface Content {

  /** Content at or below this many UTF-8 bytes is stored inline in its event. */
  int INLINE_LIMIT_BYTES = 4096;

  /** Text carried inside the event. */
  record Inline(String text) implements Content {
    public Inline {
      Objects.requireNonNull(text, "text");
    }
  }

  /**
   * Text stored once as a blob, addressed by the SHA-256 of its UTF-8 bytes.
   *
   * @param sha256 lowercase hex digest of the blob
   * @param bytes size of the blob
   * @param preview the first characters, for listings and traces
   */
  record Blob(String sha256, long bytes, String preview) implements Content {
    public Blob {
      Objects.requireNonNull(sha256, "sha256");
      Objects.requireNonNull(preview, "preview");
    }
  }

  static Content inline(String text) {
    return new Inline(text);
  }
}
