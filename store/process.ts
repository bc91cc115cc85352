// Process identity that survives pid reuse: pid + the kernel's start time of that pid.
import { readFileSync } from "node:fs";

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // field 2 (comm) may contain spaces and parens: split after the last ')'
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19]; // field 22 overall
  } catch {
    return undefined;
  }
}

export function isProcessAlive(pid: number, start: string): boolean {
  return processStartTime(pid) === start;
}

export const SELF_PID = process.pid;
export const SELF_START = processStartTime(process.pid) ?? "0";
