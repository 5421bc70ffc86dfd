/**
 * The {@code keel} command line: {@link keel.cli.Main} is its entry point. Client commands talk to a
 * Keel server over its HTTP API; {@code keel serve} and {@code keel demo} start one in this process.
 * Everything except {@code Main} and {@code ExitCodes} is an implementation detail.
 */
package keel.cli;
