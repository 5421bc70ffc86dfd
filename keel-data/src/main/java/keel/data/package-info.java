/**
 * The data plane: session event logs with their inboxes and snapshots, blobs, agent memory and the
 * inventory of descriptors, behind store interfaces with an SQLite implementation (the embedded
 * default). Implementations are package-private; {@link keel.data.Store} opens them.
 */
package keel.data;
