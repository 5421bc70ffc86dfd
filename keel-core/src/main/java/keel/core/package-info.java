/**
 * Keel's domain: descriptors and their validation, session events, the session state machine and its
 * fold, and the errors every module shares. Pure Java: nothing here performs I/O.
 */
package keel.core;
