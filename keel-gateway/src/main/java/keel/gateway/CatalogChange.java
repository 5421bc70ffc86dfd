package keel.gateway;

import java.util.Objects;

/** A change of the tool catalog, as a {@link CatalogListener} hears it. */
public sealed interface CatalogChange {

  /** The tool's {@code <server>/<tool>}. */
  String catalogName();

  /** A tool appeared in the catalog (first listed since the gateway started, or added upstream). */
  record Added(CatalogEntry entry) implements CatalogChange {
    public Added {
      Objects.requireNonNull(entry, "entry");
    }

    @Override
    public String catalogName() {
      return entry.catalogName();
    }
  }

  /**
   * A tool's schema changed: it has a new current version.
   *
   * @param entry the tool at its new version
   * @param previousVersion the version it had before
   * @param previousHash that version's schema hash
   */
  record Changed(CatalogEntry entry, int previousVersion, String previousHash) implements CatalogChange {
    public Changed {
      Objects.requireNonNull(entry, "entry");
      Objects.requireNonNull(previousHash, "previousHash");
    }

    @Override
    public String catalogName() {
      return entry.catalogName();
    }
  }

  /**
   * A tool left the catalog: its server no longer lists it, or the server was removed.
   *
   * @param server the server
   * @param tool the tool
   * @param lastVersion the version it had
   */
  record Removed(String server, String tool, int lastVersion) implements CatalogChange {
    public Removed {
      Objects.requireNonNull(server, "server");
      Objects.requireNonNull(tool, "tool");
    }

    @Override
    public String catalogName() {
      return server + "/" + tool;
    }
  }
}
