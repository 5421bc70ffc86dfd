/**
 * The composition root: configuration, wiring of the planes, the HTTP API under {@code /v1}, event
 * streams, health probes and the OpenAPI document.
 */
package keel.server;
