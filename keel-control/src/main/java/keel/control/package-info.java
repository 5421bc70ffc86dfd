/**
 * The control plane: what agents and people <em>may</em> do. Operators and their roles, agent
 * identity (signed session tokens, grants, delegation), revisions and change approval, budgets and
 * the cost ledger. The execution plane asks this module and obeys; it never decides policy itself.
 */
package keel.control;
