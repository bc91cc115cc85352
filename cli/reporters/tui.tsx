// The Ink TUI: a live picture of the build graph, a pure view over the event stream (it renders
// the view state and never starts work; q only asks the CLI to cancel).
//
//   finished nodes      printed once above the live area (<Static>), never redrawn
//   header              targets, done/running/waiting, ETA from recorded durations, elapsed
//   tree                targets down to their inputs: state, duration, ◆ on the critical path
//   log                 the selected node's live log tail
//
// Keys: ↑/↓ or k/j move, ←/→ or space collapse/expand, l the selected node's full log,
// f follow the running build again, q or Ctrl-C cancel the build and quit.
import { Box, Static, Text, render, useInput, useStdin, type Instance } from "ink";
import { useState } from "react";
import type { KilnEvent } from "../../engine/events.js";
import { plainReporter } from "./plain.js";
import {
  STATUS_LABEL, applyEvent, createViewState, criticalPath, elapsedOf, formatMs, progress, treeRows,
  type Completion, type NodeStatus, type NodeView, type TreeRow, type ViewState,
} from "./view-state.js";

const ICON: Record<NodeStatus, string> = {
  waiting: "·", running: "»", cached: "=", cutoff: "≈", substituted: "↓", built: "✓", failed: "✗", skipped: "-",
};
const COLOR: Record<NodeStatus, string | undefined> = {
  waiting: undefined, running: "yellow", cached: "gray", cutoff: "cyan", substituted: "blue", built: "green", failed: "red", skipped: "gray",
};

/** Lines of the selected node's log shown under the tree. */
const LOG_PANE = 6;

export interface AppProps {
  state: ViewState;
  now: number;
  /** the user asked to quit; the build is being cancelled */
  cancelling: boolean;
  onQuit: () => void;
  /** the full log of a node (the store's log file), or undefined to use the in-memory tail */
  readLog?: (n: NodeView) => string[] | undefined;
  rows: number;
  columns: number;
}

const bar = (done: number, total: number, width: number) => {
  const full = total ? Math.round((done / total) * width) : 0;
  return "█".repeat(full) + "░".repeat(width - full);
};

function Finished({ c, width }: { c: Completion; width: number }) {
  const label = STATUS_LABEL[c.status].padEnd(8);
  return (
    <Text color={COLOR[c.status]}>
      {ICON[c.status]} {label} {c.ms !== undefined ? `${c.name.padEnd(width)}  ${formatMs(c.ms)}` : c.name}
    </Text>
  );
}

export function Header({ state, now, cancelling, columns }: Pick<AppProps, "state" | "now" | "cancelling" | "columns">) {
  const p = progress(state, now);
  const eta = p.etaMs === undefined ? "ETA unknown (no recorded durations)" : `ETA ~${formatMs(p.etaMs)}${p.unestimated ? ` (+${p.unestimated} unestimated)` : ""}`;
  const width = Math.max(10, Math.min(40, columns - 40));
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>kiln</Text> {state.targets.join(", ")}  <Text bold>{p.done}/{p.total} done</Text> · {p.running} running · {p.remaining} waiting · {eta} · {formatMs(p.elapsedMs)}
      </Text>
      <Text>
        <Text color="green">{bar(p.done, p.total, width)}</Text> {p.total ? Math.floor((p.done / p.total) * 100) : 0}%
        {cancelling ? <Text color="red">  cancelling: stopping builds (q again to quit at once)</Text> : null}
      </Text>
    </Box>
  );
}

function Summary({ state, cancelled }: { state: ViewState; cancelled: boolean }) {
  const f = state.finished!;
  const c = state.counts;
  const word = cancelled ? "cancelled" : "done";
  return (
    <Box flexDirection="column">
      {state.failures.map((h) => {
        const n = state.nodes.get(h)!;
        return (
          <Box key={h} flexDirection="column">
            <Text color="red">FAILED {n.name}: {n.reason}</Text>
            {n.logTail.slice(-10).map((l, i) => <Text key={i} dimColor>  | {l}</Text>)}
          </Box>
        );
      })}
      <Text bold>
        {word}: {f.built} built, {f.cached} from the store{c.cutoff ? ` (${c.cutoff} cut off early)` : ""}, {f.failed} failed{c.skipped ? `, ${c.skipped} skipped` : ""} in {formatMs(f.ms)}
      </Text>
    </Box>
  );
}

/** What the user has done with the view: UI state only, the build is in ViewState. */
export interface UiState {
  cursor: number;
  /** until the user moves, the cursor follows the most recently started build */
  follow: boolean;
  collapsed: ReadonlySet<string>;
  /** drv whose full log is open */
  logOf?: string;
  /** lines scrolled up from the end of the log */
  logScroll: number;
}

const initialUi: UiState = { cursor: 0, follow: true, collapsed: new Set(), logScroll: 0 };

function selectedRow(ui: UiState, tree: TreeRow[], state: ViewState): number {
  if (ui.follow) {
    let latest = -1;
    let at = -Infinity;
    tree.forEach((r, i) => {
      const n = state.nodes.get(r.drv)!;
      if (n.status === "running" && !r.repeat && (n.startedAt ?? 0) > at) {
        at = n.startedAt ?? 0;
        latest = i;
      }
    });
    if (latest >= 0) return latest;
  }
  return Math.min(ui.cursor, Math.max(0, tree.length - 1));
}

type Key = Parameters<Parameters<typeof useInput>[0]>[1];

/**
 * One key press: the next UI state. Computed from the previous UI state (not from what the last
 * frame showed), so keys typed faster than frames are drawn still act on the right rows.
 */
export function onKey(ui: UiState, input: string, key: Key, state: ViewState, logLength: (drv: string) => number, logHeight: number): UiState {
  if (ui.logOf) {
    const maxScroll = Math.max(0, logLength(ui.logOf) - logHeight);
    const scroll = (d: number) => ({ ...ui, logScroll: Math.max(0, Math.min(maxScroll, ui.logScroll + d)) });
    if (input === "l" || key.escape) return { ...ui, logOf: undefined };
    if (key.upArrow || input === "k") return scroll(1);
    if (key.downArrow || input === "j") return scroll(-1);
    if (key.pageUp) return scroll(logHeight);
    if (key.pageDown) return scroll(-logHeight);
    if (input === "g") return { ...ui, logScroll: maxScroll };
    if (input === "G") return { ...ui, logScroll: 0 };
    return ui;
  }
  const tree = treeRows(state, ui.collapsed);
  const selected = selectedRow(ui, tree, state);
  const row = tree[selected];
  const move = (to: number): UiState => ({ ...ui, follow: false, cursor: Math.max(0, Math.min(tree.length - 1, to)) });
  if (key.upArrow || input === "k") return move(selected - 1);
  if (key.downArrow || input === "j") return move(selected + 1);
  if (key.pageUp) return move(selected - 10);
  if (key.pageDown) return move(selected + 10);
  if (input === "f") return { ...ui, follow: true };
  if (!row) return ui;
  if (input === "l") return { ...ui, logOf: row.drv, logScroll: 0 };
  if (key.leftArrow || key.rightArrow || input === " " || key.return || input === "h") {
    if (!row.hasChildren || row.repeat) return ui;
    const collapse = key.leftArrow || input === "h" ? true : key.rightArrow ? false : row.expanded;
    const collapsed = new Set(ui.collapsed);
    if (collapse) collapsed.add(row.drv);
    else collapsed.delete(row.drv);
    return { ...move(selected), collapsed };
  }
  return ui;
}

export function App(props: AppProps) {
  const { state, now, rows, columns } = props;
  const [ui, setUi] = useState<UiState>(initialUi);
  const { isRawModeSupported } = useStdin();
  const logHeight = Math.max(3, rows - 4);
  const fullLog = (drv: string) => {
    const n = state.nodes.get(drv)!;
    const file = props.readLog?.(n);
    return { lines: file ?? n.logTail, fromFile: file !== undefined };
  };

  useInput(
    (input, key) => {
      if (input === "q" || (key.ctrl && input === "c")) {
        props.onQuit();
        return;
      }
      setUi((prev) => onKey(prev, input, key, state, (drv) => fullLog(drv).lines.length, logHeight));
    },
    { isActive: isRawModeSupported === true && state.phase !== "finished" },
  );

  const tree = treeRows(state, ui.collapsed);
  const selected = selectedRow(ui, tree, state);
  const sel = tree[selected] ? state.nodes.get(tree[selected]!.drv) : undefined;
  const logOf = ui.logOf;
  const { lines: logLines, fromFile } = logOf ? fullLog(logOf) : { lines: [] as string[], fromFile: false };
  const logScroll = ui.logScroll;

  const done = state.completions.filter((c) => c.status !== "cached");
  const width = Math.min(40, state.nameWidth);
  const staticPart = <Static items={done}>{(c) => <Finished key={`${c.drv}`} c={c} width={width} />}</Static>;

  if (state.phase === "finished") {
    return (
      <>
        {staticPart}
        <Summary state={state} cancelled={props.cancelling} />
      </>
    );
  }

  if (logOf) {
    const n = state.nodes.get(logOf)!;
    const end = logLines.length - logScroll;
    const shown = logLines.slice(Math.max(0, end - logHeight), end);
    return (
      <>
        {staticPart}
        <Box flexDirection="column">
          <Text bold>
            log of {n.name} ({STATUS_LABEL[n.status]}, {logLines.length} lines{fromFile ? "" : ", in-memory tail"}) — k/j scroll, g/G top/bottom, l back
          </Text>
          {shown.map((l, i) => <Text key={i} wrap="truncate-end">{l}</Text>)}
        </Box>
      </>
    );
  }

  const cp = new Set(criticalPath(state, now).drvs);
  // keep the live area within the terminal, or Ink redraws the whole screen each frame
  const treeHeight = Math.max(3, rows - LOG_PANE - 6);
  const start = Math.max(0, Math.min(selected - Math.floor(treeHeight / 2), tree.length - treeHeight));
  const visible = tree.slice(start, start + treeHeight);
  const nameWidth = Math.min(40, Math.max(8, ...visible.map((r) => r.depth * 2 + state.nodes.get(r.drv)!.name.length)));

  return (
    <>
      {staticPart}
      <Box flexDirection="column">
        <Header state={state} now={now} cancelling={props.cancelling} columns={columns} />
        {visible.map((r, i) => {
          const n = state.nodes.get(r.drv)!;
          const isSel = start + i === selected;
          const t = elapsedOf(n, now);
          const twisty = r.hasChildren && !r.repeat ? (r.expanded ? "▾" : "▸") : " ";
          const label = `${"  ".repeat(r.depth)}${twisty} ${n.name}`;
          const extra = r.repeat ? "  (see above)" : n.status === "waiting" && n.reason ? `  ${n.reason}` : n.status === "waiting" && n.plan === "cached" ? "  in the store" : "";
          return (
            <Text key={`${r.drv}-${start + i}`} inverse={isSel} wrap="truncate-end">
              {isSel ? "›" : " "} {label.padEnd(nameWidth + 2)} <Text color={COLOR[n.status]}>{ICON[n.status]} {STATUS_LABEL[n.status].padEnd(8)}</Text>
              {t !== undefined ? ` ${formatMs(t).padStart(6)}` : n.estimateMs !== undefined && n.status === "waiting" ? ` ~${formatMs(n.estimateMs)}` : ""}
              {cp.has(r.drv) ? <Text color="magenta"> ◆</Text> : null}
              {extra}
            </Text>
          );
        })}
        {tree.length > treeHeight ? <Text dimColor>  ({tree.length} rows; {start + 1}-{start + visible.length} shown)</Text> : null}
        <Text bold>{sel ? `── ${sel.name}: ${STATUS_LABEL[sel.status]}${sel.logLines ? `, ${sel.logLines} log lines` : ""} ──` : "──"}</Text>
        {(sel?.logTail ?? []).slice(-LOG_PANE).map((l, i) => <Text key={i} dimColor wrap="truncate-end">{l}</Text>)}
        <Text dimColor>↑↓/jk move · ←→/space collapse · l full log · f follow · q quit · ◆ critical path</Text>
      </Box>
    </>
  );
}

export interface TuiOptions {
  /** where Ink draws (stderr: stdout carries the store paths) */
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  now: () => number;
  jobs: number;
  /** cancel the build (first q); quit at once (second q) */
  cancel: () => void;
  forceQuit: () => void;
  readLog?: (n: NodeView) => string[] | undefined;
  /** events after the TUI has finished (kiln check's comparisons) go here */
  after?: (e: KilnEvent) => void;
}

export interface TuiReporter {
  events: (e: KilnEvent) => void;
  /** unmount (drawing the final frame) and wait until Ink has let go of the terminal */
  close: () => Promise<void>;
  readonly state: ViewState;
}

/** Fold events into the view state and re-render, at most every 80 ms (and at once when finished). */
export function tuiReporter(o: TuiOptions): TuiReporter {
  const state = createViewState({ jobs: o.jobs });
  let instance: Instance | undefined;
  let timer: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let cancelling = false;
  let closing: Promise<void> | undefined;
  const after = o.after ?? plainReporter({ write: (s) => o.stdout.write(s), logs: false, now: o.now });

  const onQuit = () => {
    if (cancelling) o.forceQuit();
    cancelling = true;
    o.cancel();
    draw();
  };
  const element = () => (
    <App state={state} now={o.now()} cancelling={cancelling} onQuit={onQuit} readLog={o.readLog} rows={o.stdout.rows || 24} columns={o.stdout.columns || 80} />
  );
  const draw = () => {
    timer = undefined;
    if (closing) return;
    if (!instance) {
      instance = render(element(), { stdout: o.stdout, stdin: o.stdin, exitOnCtrlC: false, patchConsole: false });
      // elapsed times move even when no event comes
      ticker = setInterval(draw, 1000);
      ticker.unref();
    } else instance.rerender(element());
  };
  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (timer) clearTimeout(timer);
      if (ticker) clearInterval(ticker);
      if (!instance && state.version === 0) return;
      // the final frame: the summary when finished, else where things stood
      if (instance) instance.rerender(element());
      else instance = render(element(), { stdout: o.stdout, stdin: o.stdin, exitOnCtrlC: false, patchConsole: false });
      instance.unmount();
      await instance.waitUntilExit().catch(() => {});
    })();
    return closing;
  };
  return {
    state,
    events: (e) => {
      if (closing) return after(e);
      applyEvent(state, e, o.now());
      if (e.type === "finished") void close();
      else timer ??= setTimeout(draw, 80);
    },
    close,
  };
}
