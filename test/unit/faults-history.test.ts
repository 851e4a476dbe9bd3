import { describe, expect, it } from "vitest";
import { classifyWriteError, parseHistory, serializeEvent, type HistoryEvent } from "../../bench/faults/history.js";

const BIG = 9_007_199_254_740_993n; // 2^53 + 1: a JSON number would round it

const events: HistoryEvent[] = [
  { type: "mount", process: "c1", invokeNs: BIG, completeNs: BIG + 5n, outcome: "ok", epoch: 3, takeover: false },
  { type: "mount", process: "c2", invokeNs: BIG + 1n, completeNs: BIG + 9n, outcome: "failed", takeover: true, error: "VOLUME_BUSY" },
  { type: "write", process: "c1", block: 4, value: { block: 4, writer: "c1", seq: 1, epoch: 3 }, invokeNs: BIG + 10n, completeNs: BIG + 20n, outcome: "ok", mountEpoch: 3 },
  { type: "write", process: "c1", block: 4, value: { block: 4, writer: "c1", seq: 2, epoch: 3 }, invokeNs: BIG + 11n, completeNs: BIG + 30n, outcome: "unknown", error: "NO_QUORUM", mountEpoch: 3 },
  { type: "read", process: "c1", block: 4, invokeNs: BIG + 31n, completeNs: BIG + 40n, outcome: "ok", read: { kind: "value", value: { block: 4, writer: "c1", seq: 1, epoch: 3 } }, mountEpoch: 3 },
  { type: "read", process: "c1", block: 5, invokeNs: BIG + 31n, completeNs: BIG + 40n, outcome: "ok", read: { kind: "zero" }, mountEpoch: 3 },
  { type: "read", process: "c1", block: 6, invokeNs: BIG + 31n, completeNs: BIG + 40n, outcome: "ok", read: { kind: "undecodable", reason: "torn" }, mountEpoch: 3 },
  { type: "read", process: "c1", block: 6, invokeNs: BIG + 41n, completeNs: BIG + 50n, outcome: "unknown", error: "NO_QUORUM", mountEpoch: 3 },
  { type: "fault", name: "kill n1", atNs: BIG + 12n },
  { type: "fault", name: "partition n2", detail: "n2 | n1 n3", atNs: BIG + 13n, endNs: BIG + 60n },
];

describe("serializeEvent / parseHistory", () => {
  it("round-trips every kind of event, nanoseconds exact", () => {
    const text = events.map(serializeEvent).join("\n") + "\n";
    expect(text.split("\n").filter((l) => l !== "").length).toBe(events.length);
    expect(parseHistory(text)).toEqual(events);
  });

  it("writes times as decimal strings, one line per event", () => {
    const line = serializeEvent(events[0] as HistoryEvent);
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toMatchObject({ invokeNs: "9007199254740993" });
  });

  it("skips blank lines", () => {
    expect(parseHistory(`\n${serializeEvent(events[0] as HistoryEvent)}\n\n`)).toHaveLength(1);
  });

  const bad: { name: string; line: string; message: RegExp }[] = [
    { name: "a torn line", line: '{"type":"write","process":"c1"', message: /line 2: not JSON/ },
    { name: "an unknown type", line: '{"type":"trim"}', message: /line 2: type must be/ },
    { name: "a time as a number", line: '{"type":"fault","name":"x","atNs":12}', message: /line 2: atNs must be a decimal string/ },
    {
      name: "an ok read without data",
      line: '{"type":"read","process":"c1","block":1,"invokeNs":"1","completeNs":"2","outcome":"ok","mountEpoch":1}',
      message: /line 2: a read with outcome ok needs read/,
    },
    {
      name: "a completion before the invocation",
      line: '{"type":"mount","process":"c1","invokeNs":"5","completeNs":"2","outcome":"failed","takeover":false}',
      message: /line 2: completeNs 2 is before invokeNs 5/,
    },
    {
      name: "a bad outcome",
      line: '{"type":"mount","process":"c1","invokeNs":"1","completeNs":"2","outcome":"maybe","takeover":false}',
      message: /line 2: outcome must be/,
    },
    {
      name: "a value for another block",
      line: '{"type":"write","process":"c1","block":1,"value":{"block":2,"writer":"c1","seq":1,"epoch":1},"invokeNs":"1","completeNs":"2","outcome":"ok","mountEpoch":1}',
      message: /line 2: value.block 2 is not block 1/,
    },
  ];
  for (const b of bad) {
    it(`names the line of ${b.name}`, () => {
      expect(() => parseHistory(`${serializeEvent(events[0] as HistoryEvent)}\n${b.line}\n`)).toThrow(b.message);
    });
  }
});

describe("classifyWriteError", () => {
  const table: [string | undefined, Outcome2, boolean?][] = [
    ["INVALID_ARGUMENT", "failed"],
    ["OUT_OF_RANGE", "failed"],
    ["NOT_FOUND", "failed"],
    ["NO_QUORUM", "unknown"],
    ["FENCED", "unknown"],
    ["STALE_EPOCH", "unknown"],
    ["FENCED", "failed", true],
    ["STALE_EPOCH", "failed", true],
    ["NO_QUORUM", "unknown", true],
    ["CORRUPT", "unknown"],
    ["DISK_FAILED", "unknown"],
    ["VOLUME_BUSY", "unknown"],
    ["ETIMEDOUT", "unknown"],
    [undefined, "unknown"],
  ];
  for (const [code, outcome, fencedBeforeInvoke] of table) {
    it(`classifies ${code ?? "no code"}${fencedBeforeInvoke === true ? " (fenced before invoke)" : ""} as ${outcome}`, () => {
      expect(classifyWriteError(code, fencedBeforeInvoke === undefined ? undefined : { fencedBeforeInvoke })).toBe(outcome);
    });
  }
});

type Outcome2 = "ok" | "failed" | "unknown";
