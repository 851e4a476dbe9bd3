/**
 * The fault proxy of tools/fault-proxy.ts as a process:
 *
 *   tsx tools/fault-proxy-cli.ts --listen 127.0.0.1:8101 --target 127.0.0.1:7101 \
 *     [--direction both] [--delay 5 [--jitter 2]] [--drop 0.01] [--bandwidth 1000000] \
 *     [--blackhole | --stall] [--seed 1] [--queued-bytes-max 8388608]
 *
 * Once listening it prints one line `listening 127.0.0.1:8101 -> 127.0.0.1:7101`
 * (a parent process waits for it), then reads commands from stdin, one per
 * line, and answers each with one line `ok ...` or `error: ...`:
 *
 *   pass [up|down|both]                 clear the faults of a direction
 *   blackhole [up|down|both]            discard bytes (lost for good)
 *   stall [up|down|both]                hold bytes until cleared
 *   delay [up|down|both] MS [JITTER_MS]
 *   drop [up|down|both] PROBABILITY
 *   bandwidth [up|down|both] BYTES_PER_SEC [BURST_BYTES]
 *   set [up|down|both] FAULT ARGS ; FAULT ARGS ...   several faults at once,
 *                                       e.g. `set up delay 10 2 ; bandwidth 1000000`
 *   clear                               everything back to pass, accept new connections
 *   reset [refuse]                      RST every connection; with refuse, also new ones until clear
 *   stats                               the counters as one JSON line
 *   quit                                close and exit 0
 *
 * The direction defaults to both. End of stdin does not stop the proxy
 * (it may run with stdin from /dev/null); SIGINT and SIGTERM close it and
 * exit 0. Only loopback addresses may be listened on.
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { FaultProxy, isDirectionSelector, runControlLine, parseHostPort, toNumber, type Fault } from "./fault-proxy.js";

const USAGE = "Usage: tsx tools/fault-proxy-cli.ts --listen 127.0.0.1:PORT --target HOST:PORT [--direction up|down|both] [--delay MS [--jitter MS]] [--drop P] [--bandwidth BYTES_PER_SEC] [--blackhole | --stall] [--seed N] [--queued-bytes-max BYTES]";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      listen: { type: "string" },
      target: { type: "string" },
      direction: { type: "string", default: "both" },
      delay: { type: "string" },
      jitter: { type: "string" },
      drop: { type: "string" },
      bandwidth: { type: "string" },
      blackhole: { type: "boolean", default: false },
      stall: { type: "boolean", default: false },
      seed: { type: "string" },
      "queued-bytes-max": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (values.listen === undefined || values.target === undefined) throw new Error(`--listen and --target are required\n${USAGE}`);
  const listen = parseHostPort(values.listen);
  parseHostPort(values.target);
  const direction = values.direction;
  if (!isDirectionSelector(direction)) throw new Error(`Invalid --direction: ${direction}`);
  const faults: Fault[] = [];
  if (values.blackhole) faults.push({ kind: "blackhole" });
  if (values.stall) faults.push({ kind: "stall" });
  if (values.drop !== undefined) faults.push({ kind: "drop", probability: toNumber(values.drop, "--drop") });
  if (values.bandwidth !== undefined) faults.push({ kind: "bandwidth", bytesPerSec: toNumber(values.bandwidth, "--bandwidth") });
  if (values.delay !== undefined || values.jitter !== undefined) {
    faults.push({ kind: "delay", ms: toNumber(values.delay ?? "0", "--delay"), jitterMs: toNumber(values.jitter ?? "0", "--jitter") });
  }

  const proxy = await FaultProxy.start({
    target: values.target,
    listenHost: listen.host,
    listenPort: listen.port,
    ...(values.seed !== undefined ? { seed: toNumber(values.seed, "--seed") } : {}),
    ...(values["queued-bytes-max"] !== undefined ? { queuedBytesMax: toNumber(values["queued-bytes-max"], "--queued-bytes-max") } : {}),
  });
  try {
    if (faults.length > 0) proxy.set({ direction, fault: faults });
  } catch (err) {
    await proxy.close();
    throw err;
  }
  process.stdout.write(`listening ${proxy.address} -> ${proxy.target}\n`);

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (code: number): void => {
      if (stopping) return;
      stopping = true;
      rl.close();
      proxy.close().then(
        () => resolve(code),
        (err: unknown) => {
          process.stderr.write(`Closing the fault proxy failed: ${err instanceof Error ? err.message : String(err)}\n`);
          resolve(1);
        },
      );
    };
    const rl = createInterface({ input: process.stdin, terminal: false });
    rl.on("line", (line) => {
      if (stopping) return;
      const { answer, quit } = runControlLine(proxy, line);
      if (answer !== "") process.stdout.write(`${answer}\n`);
      if (quit) stop(0);
    });
    process.once("SIGINT", () => stop(0));
    process.once("SIGTERM", () => stop(0));
  });
}

let exitCode: number;
try {
  exitCode = await main();
} catch (err) {
  process.stderr.write(`fault-proxy: ${err instanceof Error ? err.message : String(err)}\n`);
  exitCode = 2;
}
// stdin may still hold the event loop open; everything the proxy owned is closed by now.
process.exit(exitCode);
