/** A broken invariant: a bug, never an expected failure. Assertions stay on. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(condition: unknown, message = "Assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = "Unreachable"): never {
  throw new AssertionError(`${message}: ${JSON.stringify(value)}`);
}
