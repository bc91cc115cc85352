// kiln watch <target...>: another name for kiln realize --watch (one implementation: realize.ts
// and ../watch.ts).
import type { Argv } from "yargs";
import type { GlobalArgs } from "../context.js";
import * as realize from "./realize.js";

export const command = "watch <targets..>";
export const describe = "the same as realize --watch: realize targets, then again whenever their recipe files or local sources change";

export function builder(y: Argv<GlobalArgs>) {
  return realize.builder(y);
}

export function handler(argv: Parameters<typeof realize.handler>[0]): Promise<void> {
  return realize.handler({ ...argv, watch: true });
}
