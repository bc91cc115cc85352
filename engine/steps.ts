// What the realizer's steps (fetch, substitute, build, check) share: the context, the temp-root
// protocol, and how a node's log lines become events.
import type { StorePathName } from "../store/paths.js";
import type { Context } from "./context.js";
import type { Node } from "./evaluate.js";
import type { Outputs } from "./plan.js";

export interface StepEnv {
  ctx: Context;
  /**
   * Temp-root paths before relying on them; false if one was collected before it was rooted.
   * Root-then-check is what makes a concurrent gc safe (the protocol is in store/gc.ts).
   */
  protect(paths: StorePathName[]): boolean;
  /** a line of a node's log, as an event */
  log(n: Node, line: string): void;
  signal: AbortSignal;
}

/**
 * What a step gives: its outputs; fresh when they were produced in this run (built or fetched),
 * not found in a store; identical when a fresh product was already in the store, bit for bit.
 */
export interface StepOutcome {
  outputs: Outputs;
  fresh: boolean;
  identical?: boolean;
}
