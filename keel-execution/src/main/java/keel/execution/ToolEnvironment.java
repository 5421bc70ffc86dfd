package keel.execution;

import java.nio.file.Path;
import java.time.Clock;
import java.util.Map;
import java.util.Objects;
import keel.data.Store;

/**
 * What the runtime lends to tool providers.
 *
 * @param store the data store (internal tools keep their state there)
 * @param clock the clock every time-dependent tool must use
 * @param dataDir the server's data directory
 * @param environment the server's environment variables
 */
public record ToolEnvironment(Store store, Clock clock, Path dataDir, Map<String, String> environment) {
  public ToolEnvironment {
    Objects.requireNonNull(store, "store");
    Objects.requireNonNull(clock, "clock");
    Objects.requireNonNull(dataDir, "dataDir");
    environment = Map.copyOf(environment);
  }
}
