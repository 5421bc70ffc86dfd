package keel.gateway;

/**
 * Hears of every change of the tool catalog (for the audit log). Called on the thread that
 * refreshed the catalog, after the change is in effect; must be thread-safe and quick. A listener
 * that throws is logged and otherwise ignored: it never breaks the gateway.
 */
@FunctionalInterface
public interface CatalogListener {

  /** A listener that does nothing. */
  CatalogListener NONE = change -> {};

  void changed(CatalogChange change);
}
