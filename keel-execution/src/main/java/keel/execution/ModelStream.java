package keel.execution;

/** Receives a model's output while it is generated. Implementations must not block for long. */
@FunctionalInterface
public interface ModelStream {

  /** A stream that discards everything. */
  ModelStream NONE = text -> {};

  /** Called with each new piece of the answer's text, in order. */
  void onText(String text);
}
