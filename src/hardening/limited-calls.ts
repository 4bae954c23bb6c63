import { GraphQLError, Kind, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode, type ValidationRule } from 'graphql';

/**
 * Mutations guarded by rate limits. Each call consumes one attempt, and a request may carry only a
 * bounded number of them, so aliases (`a: login(...) b: login(...)`) and batches cannot pack a
 * brute-force run into one request.
 */
export const limitedMutations: ReadonlySet<string> = new Set(['login', 'signUp', 'refreshSession', 'stepUp', 'completeLogin', 'confirmTotp', 'enrollTotp']);

type FragmentLookup = (name: string) => FragmentDefinitionNode | undefined;

/** Counts the limited root fields a mutation selects, through inline fragments and fragment spreads. */
export function countLimitedCalls(operation: OperationDefinitionNode, fragment: FragmentLookup): number {
  if (operation.operation !== 'mutation') return 0;
  return countIn(operation.selectionSet, fragment, new Set());
}

function countIn(selectionSet: SelectionSetNode, fragment: FragmentLookup, visiting: Set<string>): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (limitedMutations.has(selection.name.value)) count += 1;
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      count += countIn(selection.selectionSet, fragment, visiting);
    } else {
      const name = selection.name.value;
      const definition = fragment(name);
      // A fragment cycle is reported by graphql-js's NoFragmentCyclesRule; it adds nothing here.
      if (!definition || visiting.has(name)) continue;
      visiting.add(name);
      count += countIn(definition.selectionSet, fragment, visiting);
      visiting.delete(name);
    }
  }
  return count;
}

/** Counts the limited calls of the operation a request runs (every mutation when it names none). */
export function countLimitedCallsInDocument(document: DocumentNode, operationName: string | undefined): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  const operations: OperationDefinitionNode[] = [];
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
    if (definition.kind === Kind.OPERATION_DEFINITION) operations.push(definition);
  }
  const selected = operationName ? operations.filter((operation) => operation.name?.value === operationName) : operations;
  return selected.reduce((sum, operation) => sum + countLimitedCalls(operation, (name) => fragments.get(name)), 0);
}

/** Validation rule: an operation may call limited mutations at most `max` times. */
export function maxLimitedCallsRule(max: number): ValidationRule {
  return (context) => ({
    OperationDefinition(operation) {
      const count = countLimitedCalls(operation, (name) => context.getFragment(name) ?? undefined);
      if (count > max) {
        context.reportError(
          new GraphQLError(`The operation calls rate-limited mutations ${count} times; at most ${max} per request. Send one attempt per request.`, { nodes: [operation] }),
        );
      }
    },
  });
}
