package keel.data;

import java.util.Optional;
import keel.core.Content;

/** Large texts stored once, addressed by their SHA-256. Thread-safe. */
public interface BlobStore {

  /**
   * Returns the text as content: inline when small, else stored (once, whatever the number of
   * calls) and referenced.
   */
  Content store(String text);

  /** The text of a stored blob. */
  Optional<String> load(String sha256);

  /** The text of any content, loading blobs. */
  default String text(Content content) {
    return switch (content) {
      case Content.Inline i -> i.text();
      case Content.Blob b ->
          load(b.sha256())
              .orElseThrow(
                  () ->
                      new keel.core.KeelException.Unavailable(
                          "blob " + b.sha256() + " is referenced but missing from the store",
                          null));
    };
  }
}
