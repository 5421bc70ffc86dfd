/**
 * The execution plane: admission, the scheduler, the step executor (the reasoning loop), model
 * providers and internal tools.
 */
package keel.execution;
