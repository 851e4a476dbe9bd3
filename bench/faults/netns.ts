/**
 * The network-namespace variant of `npm run bench:faults` (--netns, root):
 * every volnode in its own network namespace, links cut with iptables
 * inside those namespaces instead of going through the fault proxy.
 *
 * The plumbing of one cluster (NetnsNetwork.create), run id R (4 hex
 * digits, random) and subnet 10.213.K.0/24 (K free on this machine):
 *
 *   namespace rv-R-hub   bridge br0; one veth port per node, one to root
 *   namespace rv-R-nI    eth0 (veth, its peer nI a port of br0 in the hub):
 *                          10.213.K.I       peer address (peers, runner's admin calls)
 *                          10.213.K.(100+I) client address (client processes only)
 *                        volnode listens on 0.0.0.0:(7100+I): only these two
 *                        addresses and lo exist in its namespace
 *   root namespace       veth rv213-K (peer up0 a port of br0) with 10.213.K.254/24:
 *                        the runner and the client processes stay here; the
 *                        link's name claims K against other runs at once
 *
 * The bridge lives in a namespace of its own so that the root namespace's
 * bridge netfilter and iptables (bridge-nf-call-iptables) never see the
 * nodes' traffic, and so that deleting the namespaces removes every link.
 * A node gets two addresses so that cutting the clients off (they connect
 * to the client address) leaves the runner's admin calls (to the peer
 * address) working, as the proxy variant's real addresses do.
 *
 * Faults, in chains RV-IN (hooked into INPUT) and RV-OUT (OUTPUT) of the
 * nodes' namespaces, all `-p tcp` on node ports, DROP:
 * - "X's packets no longer reach Y" (cutOneWay(X, Y)): in Y's namespace,
 *   RV-IN drops tcp from X's peer address to Y's port (X's connections to
 *   Y) and from X's port (X's answers on Y's connections to X): dropped on
 *   arrival, a silent partition for the sender. TCP retransmits what was
 *   dropped, so when the rules go the streams resume intact: the proxy's
 *   "stall", whatever --partition says.
 * - both directions between X and Y: the same in both namespaces.
 * - clients cut from node X: in X's namespace, RV-IN drops tcp to X's
 *   client address and port, RV-OUT drops tcp from them.
 * - heal: RV-IN and RV-OUT flushed in every node namespace.
 * A change is one `ip netns exec NS iptables-restore --noflush` per
 * namespace (a few ms each, synchronous); the cluster reports when a cut is
 * in place (onNetnsCut) and run.ts starts the fault then, so the old
 * primary's acknowledgements of the first tens of ms are not taken for a
 * failover.
 * Delay, jitter, loss and connection resets have no iptables equivalent
 * (tc netem is not available here): scenarios that need them say so
 * (Scenario.netnsSkip) and are skipped.
 *
 * Cleanup (destroy(), also from the exit, SIGINT, SIGTERM and SIGHUP hooks,
 * synchronously there): the chains flushed, the node namespaces and the hub
 * deleted (their veths go with them, the root one too), checked by
 * listing. The nodes are ended by the cluster by PID before that; a
 * namespace that still holds a process disappears when it exits. Network
 * traffic goes only to addresses of 10.213.K.0/24 in namespaces the run
 * created.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";

const EXEC_TIMEOUT_MS = 10_000;
const SUBNET_PREFIX = "10.213";
const ROOT_HOST = 254;
const CLIENT_HOST_BASE = 100;
const PORT_BASE = 7100;

/** The iptables family to use: plain iptables first (whatever its backend), then the explicit variants. */
const IPTABLES_CANDIDATES = [
  { iptables: "iptables", restore: "iptables-restore" },
  { iptables: "iptables-nft", restore: "iptables-nft-restore" },
  { iptables: "iptables-legacy", restore: "iptables-legacy-restore" },
] as const;

type IptablesTool = (typeof IPTABLES_CANDIDATES)[number];

let chosenTool: IptablesTool | null = null;

function quietExec(cmd: string, args: readonly string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore", timeout: EXEC_TIMEOUT_MS });
    return true;
  } catch {
    return false;
  }
}

/**
 * Why --netns cannot run here, or null: root, `ip netns`, and an iptables
 * (iptables, iptables-nft or iptables-legacy, with its -restore).
 */
export function netnsUnavailable(): string | null {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return "--netns needs root (it creates network namespaces, veths and iptables rules)";
  if (!quietExec("ip", ["netns", "list"])) return "--netns needs `ip netns` (iproute2) working: `ip netns list` failed";
  for (const t of IPTABLES_CANDIDATES) {
    if (quietExec(t.iptables, ["--version"]) && quietExec(t.restore, ["--version"])) {
      chosenTool = t;
      return null;
    }
  }
  return "--netns needs iptables (iptables, iptables-nft or iptables-legacy with its -restore); on Debian: apt-get install -y iptables";
}

function tool(): IptablesTool {
  if (chosenTool === null) {
    const why = netnsUnavailable();
    if (why !== null || chosenTool === null) throw new Error(why ?? "no iptables");
  }
  return chosenTool;
}

function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: EXEC_TIMEOUT_MS, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${cmd} ${args.join(" ")}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

function runSync(cmd: string, args: readonly string[], input?: string): string {
  try {
    return execFileSync(cmd, args, { timeout: EXEC_TIMEOUT_MS, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], ...(input === undefined ? {} : { input }) });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${(e.stderr ?? "").trim() || e.message}`);
  }
}

export interface NetnsNode {
  readonly id: string;
  readonly namespace: string;
  /** Peer address and port (peers' cluster files, the runner's admin calls). */
  readonly peerIp: string;
  /** Client address (the clients' cluster file). */
  readonly clientIp: string;
  readonly port: number;
}

/** One directed drop, rendered as an iptables rule of chain RV-IN or RV-OUT. */
interface Drop {
  readonly chain: "RV-IN" | "RV-OUT";
  readonly src?: string;
  readonly dst?: string;
  readonly sport?: number;
  readonly dport?: number;
}

/** "refused" (the address answered with a reset), "connected", or why not. */
function probe(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (what: string): void => {
      sock.destroy();
      resolve(what);
    };
    sock.setTimeout(1000, () => done("timeout"));
    sock.once("connect", () => done("connected"));
    sock.once("error", (err: NodeJS.ErrnoException) => done(err.code === "ECONNREFUSED" ? "refused" : String(err.code ?? err.message)));
  });
}

function rule(d: Drop): string {
  return [`-A ${d.chain} -p tcp`, d.src === undefined ? "" : `-s ${d.src}/32`, d.dst === undefined ? "" : `-d ${d.dst}/32`, d.sport === undefined ? "" : `--sport ${d.sport}`, d.dport === undefined ? "" : `--dport ${d.dport}`, "-j DROP"].filter((x) => x !== "").join(" ");
}

/** Subnets (third octet) taken by clusters of this process. */
const subnetsInUse = new Set<number>();
/** Networks not yet destroyed: cleaned up synchronously at exit or on a signal. */
const live = new Set<NetnsNetwork>();
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", () => {
    for (const n of [...live]) n.destroySync();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      for (const n of [...live]) n.destroySync();
      // The cluster's exit hook then SIGKILLs every child by PID.
      process.exit(sig === "SIGINT" ? 130 : sig === "SIGTERM" ? 143 : 129);
    });
  }
}

/** A third octet K such that 10.213.K.0/24 is in no address or route of this machine, nor in use here, nor in `skip`. */
function freeSubnet(skip: ReadonlySet<number>): number {
  const seen = `${runSync("ip", ["-o", "-4", "addr", "show"])}\n${runSync("ip", ["-4", "route", "show", "table", "all"])}`;
  for (let k = 1; k <= 250; k++) {
    if (subnetsInUse.has(k) || skip.has(k)) continue;
    if (seen.includes(`${SUBNET_PREFIX}.${k}.`)) continue;
    subnetsInUse.add(k);
    return k;
  }
  throw new Error(`No free subnet ${SUBNET_PREFIX}.K.0/24 left`);
}

/** Root's veth end of subnet K: link names are unique in a namespace, so creating it claims K against other runs too. */
const rootLinkName = (k: number): string => `rv213-${k}`;

export class NetnsNetwork {
  readonly nodes: NetnsNode[] = [];
  readonly hub: string;
  /** The third octet of the subnet (claimed in build()). */
  subnet = 0;
  private readonly created: string[] = [];
  private destroyed = false;

  private constructor(readonly runId: string) {
    this.hub = `rv-${runId}-hub`;
  }

  /** Root's veth end (with the root address); "" before the subnet is claimed. */
  get rootLink(): string {
    return this.subnet === 0 ? "" : rootLinkName(this.subnet);
  }

  get rootIp(): string {
    return `${SUBNET_PREFIX}.${this.subnet}.${ROOT_HOST}`;
  }

  /** Creates the namespaces, bridge, veths, addresses and empty RV-IN/RV-OUT chains; on failure removes what it made. */
  static async create(ids: readonly string[]): Promise<NetnsNetwork> {
    const why = netnsUnavailable();
    if (why !== null) throw new Error(why);
    if (ids.length > 50) throw new Error("--netns: at most 50 nodes");
    const existing = runSync("ip", ["netns", "list"]);
    let runId = "";
    for (let i = 0; i < 20 && (runId === "" || existing.includes(`rv-${runId}-`)); i++) runId = randomBytes(2).toString("hex");
    const net = new NetnsNetwork(runId);
    live.add(net);
    installHooks();
    try {
      await net.build(ids);
    } catch (err) {
      await net.destroy();
      throw err;
    }
    return net;
  }

  private async build(ids: readonly string[]): Promise<void> {
    const hub = this.hub;
    await this.addNamespace(hub);
    await run("ip", ["-n", hub, "link", "add", "br0", "type", "bridge"]);
    await run("ip", ["-n", hub, "link", "set", "br0", "up"]);
    // Root's link first, which claims the subnet. Created in the hub and its end moved to root.
    const tried = new Set<number>();
    for (let i = 0; i < 10 && this.subnet === 0; i++) {
      const k = freeSubnet(tried);
      tried.add(k);
      try {
        await run("ip", ["-n", hub, "link", "add", "up0", "type", "veth", "peer", "name", rootLinkName(k), "netns", String(process.pid)]);
        this.subnet = k;
      } catch (err) {
        subnetsInUse.delete(k);
        if (i === 9) throw err;
      }
    }
    await run("ip", ["-n", hub, "link", "set", "up0", "master", "br0", "up"]);
    await run("ip", ["addr", "add", `${this.rootIp}/24`, "dev", this.rootLink]);
    await run("ip", ["link", "set", this.rootLink, "up"]);
    for (const [i, id] of ids.entries()) {
      const host = i + 1;
      const ns = `rv-${this.runId}-${id}`;
      const node: NetnsNode = { id, namespace: ns, peerIp: `${SUBNET_PREFIX}.${this.subnet}.${host}`, clientIp: `${SUBNET_PREFIX}.${this.subnet}.${CLIENT_HOST_BASE + host}`, port: PORT_BASE + host };
      await this.addNamespace(ns);
      await run("ip", ["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", id, "netns", hub]);
      await run("ip", ["-n", hub, "link", "set", id, "master", "br0", "up"]);
      // The peer address first: it is the primary one, the source of the node's own connections.
      await run("ip", ["-n", ns, "addr", "add", `${node.peerIp}/24`, "dev", "eth0"]);
      await run("ip", ["-n", ns, "addr", "add", `${node.clientIp}/24`, "dev", "eth0"]);
      await run("ip", ["-n", ns, "link", "set", "eth0", "up"]);
      await run("ip", ["netns", "exec", ns, tool().restore], "*filter\n:RV-IN - [0:0]\n:RV-OUT - [0:0]\n-A INPUT -j RV-IN\n-A OUTPUT -j RV-OUT\nCOMMIT\n");
      this.nodes.push(node);
    }
    await this.waitReachable();
  }

  private async addNamespace(ns: string): Promise<void> {
    await run("ip", ["netns", "add", ns]);
    this.created.push(ns);
    await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
  }

  /** Every node's two addresses answer from root: a TCP connect to its port (nothing listens yet) is refused, not lost. Bounded. */
  private async waitReachable(): Promise<void> {
    for (const n of this.nodes) {
      for (const ip of [n.peerIp, n.clientIp]) {
        let last = "";
        for (let i = 0; i < 30; i++) {
          last = await probe(ip, n.port);
          if (last === "refused" || last === "connected") break;
          await new Promise((r) => setTimeout(r, 100));
        }
        if (last !== "refused" && last !== "connected") throw new Error(`--netns: ${ip}:${n.port} (${n.id}) not reachable from root: ${last}`);
      }
    }
  }

  node(id: string): NetnsNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`No node ${id} in the namespaces`);
    return n;
  }

  /** The command line that runs `command args` inside node `id`'s namespace; `ip netns exec` execs it, so the PID is the command's. */
  wrap(id: string, command: string, args: readonly string[]): { command: string; args: string[] } {
    return { command: "ip", args: ["netns", "exec", this.node(id).namespace, command, ...args] };
  }

  private apply(namespace: string, drops: readonly Drop[]): void {
    if (drops.length === 0) return;
    runSync("ip", ["netns", "exec", namespace, tool().restore, "--noflush"], `*filter\n${drops.map(rule).join("\n")}\nCOMMIT\n`);
  }

  /** `from`'s packets no longer reach `to` (dropped on arrival in `to`'s namespace); the other direction works. */
  cutOneWay(from: string, to: string): void {
    const a = this.node(from);
    const b = this.node(to);
    this.apply(b.namespace, [
      { chain: "RV-IN", src: a.peerIp, dst: b.peerIp, dport: b.port },
      { chain: "RV-IN", src: a.peerIp, dst: b.peerIp, sport: a.port },
    ]);
  }

  cutBoth(a: string, b: string): void {
    this.cutOneWay(a, b);
    this.cutOneWay(b, a);
  }

  /** Client traffic to (`up`), from (`down`) or both ways of node `id`'s client address dropped. */
  cutClients(id: string, direction: "up" | "down" | "both"): void {
    const n = this.node(id);
    const drops: Drop[] = [];
    if (direction !== "down") drops.push({ chain: "RV-IN", dst: n.clientIp, dport: n.port });
    if (direction !== "up") drops.push({ chain: "RV-OUT", src: n.clientIp, sport: n.port });
    this.apply(n.namespace, drops);
  }

  /** Every RV-IN/RV-OUT rule gone. */
  heal(): void {
    for (const n of this.nodes) runSync("ip", ["netns", "exec", n.namespace, tool().restore, "--noflush"], "*filter\n-F RV-IN\n-F RV-OUT\nCOMMIT\n");
  }

  /** The DROP rules in place now, per namespace (for logs and tests). */
  rules(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const n of this.nodes) {
      out[n.id] = runSync("ip", ["netns", "exec", n.namespace, tool().iptables, "-S"])
        .split("\n")
        .filter((l) => l.startsWith("-A RV-"));
    }
    return out;
  }

  /** Namespaces of this network that still exist. */
  leftovers(): string[] {
    const names = new Set(
      runSync("ip", ["netns", "list"])
        .split("\n")
        .map((l) => l.split(" ")[0] ?? ""),
    );
    return this.created.filter((ns) => names.has(ns));
  }

  /** Flushes the rules, deletes the namespaces (and with them every veth and the bridge). Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    const errors: string[] = [];
    for (const n of this.nodes) await run("ip", ["netns", "exec", n.namespace, tool().restore, "--noflush"], "*filter\n-F RV-IN\n-F RV-OUT\nCOMMIT\n").catch(() => undefined);
    for (const ns of [...this.created].reverse()) await run("ip", ["netns", "del", ns]).catch((e: unknown) => errors.push(String(e)));
    if (this.rootLink !== "") await run("ip", ["link", "del", this.rootLink]).catch(() => undefined);
    subnetsInUse.delete(this.subnet);
    const left = this.leftovers();
    if (left.length > 0) throw new Error(`--netns cleanup: namespaces left: ${left.join(", ")} (${errors.join("; ")})`);
  }

  /** destroy() for exit and signal handlers: synchronous, never throws. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const ns of [...this.created].reverse()) {
      try {
        runSync("ip", ["netns", "del", ns]);
      } catch {
        // gone already
      }
    }
    try {
      if (this.rootLink !== "") runSync("ip", ["link", "del", this.rootLink]);
    } catch {
      // went with the hub
    }
  }
}
