// The Ink TUI: a live picture of the build graph, a pure view over the event stream (it renders
// the view state and never starts work; q only asks the CLI to cancel).
//
//   finished nodes      printed once above the live area (<Static>), never redrawn
//   header              targets, done/running/waiting, ETA from recorded durations, elapsed
//   tree                targets down to their inputs: state, duration, ◆ on the critical path,
//                       and for what is still to build, in a few words why
//   log / why           the selected node's live log tail, or why it is being built
//
// In watch mode (realize --watch) one session spans the rounds: each round's header, finished
// nodes and outcome (summary, outputs, or the error of a broken recipe) are printed once, and the
// live area shows the current round, or the last one while the watch waits for changes.
//
// Keys: ↑/↓ or k/j move, ←/→ or space collapse/expand, l the selected node's full log, w why it
// is being built, f follow the running build again, q or Ctrl-C cancel the build (or stop the
// watch) and quit.
import { Box, Static, Text, render, useInput, useStdin, type Instance } from "ink";
import { useState } from "react";
import type { KilnEvent } from "../../engine/events.js";
import { plainReporter } from "./plain.js";
import { human } from "../units.js";
import {
  STATUS_LABEL, applyEvent, createViewState, criticalPath, elapsedOf, formatMs, progress, treeRows,
  type Completion, type NodeStatus, type NodeView, type TreeRow, type ViewState,
} from "./view-state.js";

const ICON: Record<NodeStatus, string> = {
  waiting: "·", running: "»", cached: "=", cutoff: "≈", substituted: "↓", built: "✓", failed: "✗", cancelled: "×", skipped: "-",
};
const COLOR: Record<NodeStatus, string | undefined> = {
  waiting: undefined, running: "yellow", cached: "gray", cutoff: "cyan", substituted: "blue", built: "green", failed: "red", cancelled: "gray", skipped: "gray",
};

/** Lines of the selected node's log shown under the tree. */
const LOG_PANE = 6;
/** Lines of the why panel (it takes the log's place, and a little of the tree's). */
const WHY_PANE = 9;

export interface AppProps {
  state: ViewState;
  now: number;
  /** the user asked to quit; the build is being cancelled */
  cancelling: boolean;
  onQuit: () => void;
  /** the full log of a node (the store's log file), or undefined to use the in-memory tail */
  readLog?: (n: NodeView) => string[] | undefined;
  /** why a node is being built, in a few words (for its row); computed by the CLI, on demand */
  reasonOf?: (n: NodeView) => string | undefined;
  /** why a node is being built, in full (the why panel) */
  whyOf?: (n: NodeView) => string[] | undefined;
  /** the session is over: the last frame */
  closed?: boolean;
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

/** Watch mode: which round, what started it, or what the watch waits for. */
export function WatchLine({ state, cancelling }: Pick<AppProps, "state" | "cancelling">) {
  const w = state.watch!;
  const changed = w.changed.length ? ` · changed: ${w.changed.slice(0, 3).join(", ")}${w.changed.length > 3 ? ` and ${w.changed.length - 3} more` : ""}` : "";
  if (cancelling) return <Text color="red">watch · round {w.round} · stopping the watch (q again to quit at once)</Text>;
  if (w.status === "running") {
    return <Text><Text bold color="yellow">watch · round {w.round}</Text>{changed}{state.phase === "evaluating" ? " · evaluating" : ""}</Text>;
  }
  return (
    <Text>
      <Text bold color={w.error ? "red" : "green"}>watch · round {w.round} {w.error ? "failed" : "done"}</Text>
      {w.error && state.nodes.size === 0 ? " (the error is above)" : ""} · watching {w.files ?? 0} files and folders · waiting for changes · q to stop
    </Text>
  );
}

export function Header({ state, now, cancelling, columns }: Pick<AppProps, "state" | "now" | "cancelling" | "columns">) {
  const p = progress(state, now);
  const eta = p.etaMs === undefined ? "ETA unknown (no recorded durations)" : `ETA ~${formatMs(p.etaMs)}${p.unestimated ? ` (+${p.unestimated} unestimated)` : ""}`;
  const width = Math.max(10, Math.min(40, columns - 40));
  // a round still evaluating, or one that could not: no graph to count
  if (state.watch && state.nodes.size === 0) return <WatchLine state={state} cancelling={cancelling} />;
  return (
    <Box flexDirection="column">
      {state.watch ? <WatchLine state={state} cancelling={cancelling} /> : null}
      <Text>
        <Text bold>kiln</Text> {state.targets.join(", ")}  <Text bold>{p.done}/{p.total} done</Text> · {p.running} running · {p.remaining} waiting · {eta}
        {state.downloadBytes > 0 ? ` · ↓ ${human(state.downloadBytes)} from caches` : ""}
        {state.pushed > 0 ? ` · ↑ ${state.pushed} pushed` : ""} · {formatMs(p.elapsedMs)}
      </Text>
      <Text>
        <Text color="green">{bar(p.done, p.total, width)}</Text> {p.total ? Math.floor((p.done / p.total) * 100) : 0}%
        {cancelling && !state.watch ? <Text color="red">  cancelling: stopping builds (q again to quit at once)</Text> : null}
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
        {word}: {f.built} built, {f.cached} from the store{c.cutoff ? ` (${c.cutoff} cut off early)` : ""}{f.substituted ? `, ${f.substituted} substituted` : ""}, {f.failed} failed{f.cancelled ? `, ${f.cancelled} cancelled` : ""}{f.skipped ? `, ${f.skipped} skipped` : ""} in {formatMs(f.ms)}
      </Text>
    </Box>
  );
}

/** Watch mode: how a round ended, printed once under its finished nodes. */
function RoundEnd({ state }: { state: ViewState }) {
  const w = state.watch!;
  // a failed build is told by the summary (with its log tail); other errors by their message
  const showError = w.error && !(w.error.code === "BUILD_FAILED" && state.failures.length);
  return (
    <Box flexDirection="column">
      {state.finished ? <Summary state={state} cancelled={false} /> : null}
      {showError ? <Text color="red">round {w.round} failed: {w.error!.message}</Text> : null}
      {w.outputs.map((o) => <Text key={o}>{o}</Text>)}
    </Box>
  );
}

/** What is printed once above the live area: finished nodes, and in watch mode each round's start and end. */
type Printed = { kind: "round"; round: number; changed: string[] } | { kind: "warning"; message: string } | { kind: "node"; c: Completion } | { kind: "end" };

function printedItems(state: ViewState): Printed[] {
  const items: Printed[] = [];
  const w = state.watch;
  if (w) items.push({ kind: "round", round: w.round, changed: w.changed });
  for (const message of state.warnings) items.push({ kind: "warning", message });
  for (const c of state.completions) if (c.status !== "cached") items.push({ kind: "node", c });
  if (w?.status === "idle") items.push({ kind: "end" });
  return items;
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
  /** the why panel is open (for the selected node) */
  why: boolean;
}

const initialUi: UiState = { cursor: 0, follow: true, collapsed: new Set(), logScroll: 0, why: false };

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
  if (input === "w") return { ...ui, why: !ui.why };
  if (key.escape && ui.why) return { ...ui, why: false };
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
  const round = state.watch?.round;
  // a new watch round is a new graph: the cursor follows its builds again (an open panel stays);
  // set while rendering, so that no frame shows the new graph with the old round's cursor or log
  const [uiRound, setUiRound] = useState(round);
  if (uiRound !== round) {
    setUiRound(round);
    setUi((u) => ({ ...initialUi, why: u.why }));
  }
  const logHeight = Math.max(3, rows - 4);
  const fullLog = (drv: string) => {
    const n = state.nodes.get(drv);
    if (!n) return { lines: [] as string[], fromFile: false };
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
    // a watch takes keys between its rounds too
    { isActive: isRawModeSupported === true && (state.phase !== "finished" || state.watch !== undefined) && !props.closed },
  );

  const tree = treeRows(state, ui.collapsed);
  const selected = selectedRow(ui, tree, state);
  const sel = tree[selected] ? state.nodes.get(tree[selected]!.drv) : undefined;
  const logOf = ui.logOf !== undefined && state.nodes.has(ui.logOf) ? ui.logOf : undefined;
  const { lines: logLines, fromFile } = logOf ? fullLog(logOf) : { lines: [] as string[], fromFile: false };
  const logScroll = ui.logScroll;

  const width = Math.min(40, state.nameWidth);
  // one <Static> per round (a new key starts it afresh): what it printed stays in the scrollback
  const staticPart = (
    <Static key={round ?? 0} items={printedItems(state)}>
      {(p, i) => {
        const key = `${round ?? 0}-${i}`;
        if (p.kind === "node") return <Finished key={key} c={p.c} width={width} />;
        if (p.kind === "end") return <RoundEnd key={key} state={state} />;
        if (p.kind === "warning") return <Text key={key} color="yellow">warning: {p.message}</Text>;
        const what = p.changed.length ? `: changed ${p.changed.join(", ")}` : "";
        return <Text key={key} bold>── round {p.round}{what} ──</Text>;
      }}
    </Static>
  );

  if (state.watch && props.closed) {
    const w = state.watch;
    return (
      <>
        {staticPart}
        {/* stopped during a round: where it stood */}
        {w.status === "running" && state.finished ? <Summary state={state} cancelled={props.cancelling} /> : null}
        <Text bold>watch stopped after {w.round} round{w.round === 1 ? "" : "s"}</Text>
      </>
    );
  }

  if (state.phase === "finished" && !state.watch) {
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

  if (state.watch && state.nodes.size === 0) {
    // evaluating, or a round that could not evaluate: no graph to show
    return (
      <>
        {staticPart}
        <Header state={state} now={now} cancelling={props.cancelling} columns={columns} />
      </>
    );
  }

  const cp = new Set(criticalPath(state, now).drvs);
  const pane = ui.why ? WHY_PANE : LOG_PANE;
  const whyLines = ui.why && sel ? (props.whyOf?.(sel) ?? ["no explanation available"]) : [];
  // keep the live area within the terminal, or Ink redraws the whole screen each frame
  const treeHeight = Math.max(3, rows - pane - 6 - (state.watch ? 1 : 0));
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
          const toBuild = (n.status === "waiting" || n.status === "running") && n.plan !== "cached";
          const extra = r.repeat ? "  (see above)" : n.status === "waiting" && n.reason ? `  ${n.reason}` : n.status === "waiting" && n.plan === "cached" ? "  in the store" : "";
          const why = !r.repeat && !extra && toBuild ? props.reasonOf?.(n) : undefined;
          return (
            <Text key={`${r.drv}-${start + i}`} inverse={isSel} wrap="truncate-end">
              {isSel ? "›" : " "} {label.padEnd(nameWidth + 2)} <Text color={COLOR[n.status]}>{ICON[n.status]} {STATUS_LABEL[n.status].padEnd(8)}</Text>
              {t !== undefined ? ` ${formatMs(t).padStart(6)}` : n.estimateMs !== undefined && n.status === "waiting" ? ` ~${formatMs(n.estimateMs)}` : ""}
              {cp.has(r.drv) ? <Text color="magenta"> ◆</Text> : null}
              {n.machine && n.machine !== "local" && n.status === "running" ? <Text color="blue">  on {n.machine}</Text> : null}
              {extra}
              {why ? <Text dimColor>  {why}</Text> : null}
            </Text>
          );
        })}
        {tree.length > treeHeight ? <Text dimColor>  ({tree.length} rows; {start + 1}-{start + visible.length} shown)</Text> : null}
        {ui.why ? (
          <>
            <Text bold>{sel ? `── why ${sel.name} (${STATUS_LABEL[sel.status]}) ── w close` : "──"}</Text>
            {whyLines.slice(0, whyLines.length > WHY_PANE ? WHY_PANE - 1 : WHY_PANE).map((l, i) => <Text key={i} wrap="truncate-end">{l}</Text>)}
            {whyLines.length > WHY_PANE ? <Text dimColor>  … {whyLines.length - WHY_PANE + 1} more lines (kiln why, kiln plan)</Text> : null}
          </>
        ) : (
          <>
            <Text bold>{sel ? `── ${sel.name}: ${STATUS_LABEL[sel.status]}${sel.logLines ? `, ${sel.logLines} log lines` : ""} ──` : "──"}</Text>
            {(sel?.logTail ?? []).slice(-LOG_PANE).map((l, i) => <Text key={i} dimColor wrap="truncate-end">{l}</Text>)}
          </>
        )}
        <Text dimColor>↑↓/jk move · ←→/space collapse · l full log · w why · f follow · q {state.watch ? "stop" : "quit"} · ◆ critical path</Text>
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
  reasonOf?: (n: NodeView) => string | undefined;
  whyOf?: (n: NodeView) => string[] | undefined;
  /** events after the TUI has finished (kiln check's comparisons) go here */
  after?: (e: KilnEvent) => void;
}

export interface TuiReporter {
  events: (e: KilnEvent) => void;
  /** unmount (drawing the final frame) and wait until Ink has let go of the terminal */
  close: () => Promise<void>;
  readonly state: ViewState;
}

/**
 * Fold events into the view state and re-render, at most every 80 ms (and at once when finished).
 * A build ends the session when it finishes; a watch (its first event is a round) when closed.
 */
export function tuiReporter(o: TuiOptions): TuiReporter {
  const state = createViewState({ jobs: o.jobs });
  let instance: Instance | undefined;
  let timer: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let cancelling = false;
  let closed = false;
  let closing: Promise<void> | undefined;
  const after = o.after ?? plainReporter({ write: (s) => o.stdout.write(s), logs: false, now: o.now });

  const onQuit = () => {
    if (cancelling) o.forceQuit();
    cancelling = true;
    o.cancel();
    draw();
  };
  const element = () => (
    <App
      state={state} now={o.now()} cancelling={cancelling} onQuit={onQuit} readLog={o.readLog} reasonOf={o.reasonOf} whyOf={o.whyOf}
      closed={closed} rows={o.stdout.rows || 24} columns={o.stdout.columns || 80}
    />
  );
  const draw = () => {
    clearTimeout(timer);
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
    closed = true;
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
      // the last round's end must be drawn (printed) before the next round replaces the picture
      if (e.type === "round" && timer) draw();
      applyEvent(state, e, o.now());
      if (e.type === "finished" && !state.watch) void close();
      else timer ??= setTimeout(draw, 80);
    },
    close,
  };
}
