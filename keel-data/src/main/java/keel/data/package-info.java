/**
 * The data plane: session event logs with their inboxes and snapshots, blobs, agent memory and the
 * inventory of descriptors, behind store interfaces with two implementations: SQLite (the embedded
 * default) and PostgreSQL (shared by many nodes). Implementations are package-private; {@link
 * keel.data.Store} opens them.
 */
package keel.data;
