import { assert } from "./assert.js";
import { asLsn, coversBlocks, recordVersion, versionEquals, type LogRecord, type Lsn, type Version } from "./types.js";

/**
 * The records a replica holds in order, after `base` (the version of the
 * record just before the first one kept: the point a checkpoint trimmed to,
 * or the snapshot a region resync began from).
 */
export class RecordLog {
  private base: Version;
  private records: LogRecord[] = [];
  private payloadBytes = 0;
  /** Payload bytes appended since this log was made through each held record, and through the base. */
  private ends: number[] = [];
  private baseEnd = 0;

  constructor(base: Version, records: readonly LogRecord[]) {
    this.base = base;
    this.append(records);
  }

  baseVersion(): Version {
    return this.base;
  }

  head(): Version {
    const last = this.records[this.records.length - 1];
    return last === undefined ? this.base : recordVersion(last);
  }

  /** First lsn held (head().lsn + 1 when empty). */
  startLsn(): Lsn {
    return asLsn(this.base.lsn + 1);
  }

  length(): number {
    return this.records.length;
  }

  bytes(): number {
    return this.payloadBytes;
  }

  get(lsn: Lsn): LogRecord | undefined {
    const i = lsn - this.base.lsn - 1;
    return i >= 0 ? this.records[i] : undefined;
  }

  /** The version at `lsn` if it is the base or a held record; null below the base or past the head. */
  versionAt(lsn: Lsn): Version | null {
    if (lsn === this.base.lsn) return this.base;
    const r = this.get(lsn);
    return r === undefined ? null : recordVersion(r);
  }

  /** Payload bytes of the held records with fromLsn <= lsn <= toLsn. */
  bytesBetween(fromLsn: Lsn, toLsn: Lsn): number {
    const from = Math.max(fromLsn, this.base.lsn + 1) - this.base.lsn - 1;
    const to = Math.min(toLsn, this.head().lsn) - this.base.lsn - 1;
    if (from > to) return 0;
    return (this.ends[to] ?? 0) - (from === 0 ? this.baseEnd : (this.ends[from - 1] ?? 0));
  }

  /** Records with fromLsn <= lsn <= toLsn that are held, in order. */
  slice(fromLsn: Lsn, toLsn: Lsn): LogRecord[] {
    const from = Math.max(fromLsn, this.base.lsn + 1) - this.base.lsn - 1;
    const to = Math.min(toLsn, this.head().lsn) - this.base.lsn;
    return from < to ? this.records.slice(from, to) : [];
  }

  append(records: readonly LogRecord[]): void {
    for (const r of records) {
      const head = this.head();
      assert(r.lsn === head.lsn + 1, `Log append out of order: ${r.lsn} after ${head.lsn}`);
      assert(r.epoch >= head.epoch, `Log append of epoch ${r.epoch} after epoch ${head.epoch}`);
      this.records.push(r);
      this.payloadBytes += r.data?.length ?? 0;
      this.ends.push((this.ends[this.ends.length - 1] ?? this.baseEnd) + (r.data?.length ?? 0));
    }
  }

  /** Drops every record after `lsn`; never below the base. Returns what was dropped. */
  truncateAfter(lsn: Lsn): LogRecord[] {
    assert(lsn >= this.base.lsn, `Log truncation to ${lsn} below its base ${this.base.lsn}`);
    const dropped = this.records.splice(lsn - this.base.lsn);
    this.ends.splice(lsn - this.base.lsn);
    for (const r of dropped) this.payloadBytes -= r.data?.length ?? 0;
    return dropped;
  }

  /** Forgets every record and takes `snapshot` as the base (start of a region resync). */
  reset(snapshot: Version): void {
    this.records = [];
    this.payloadBytes = 0;
    this.ends = [];
    this.base = snapshot;
  }

  /** Drops records up to and including `lsn` from the front. Returns them. */
  trimThrough(lsn: Lsn): LogRecord[] {
    if (lsn <= this.base.lsn) return [];
    const n = Math.min(lsn - this.base.lsn, this.records.length);
    const dropped = this.records.splice(0, n);
    const ends = this.ends.splice(0, n);
    this.baseEnd = ends[ends.length - 1] ?? this.baseEnd;
    const last = dropped[dropped.length - 1];
    if (last !== undefined) this.base = recordVersion(last);
    for (const r of dropped) this.payloadBytes -= r.data?.length ?? 0;
    return dropped;
  }

  /** Whether this log holds `v` (as the base or as a record). */
  holds(v: Version): boolean {
    const mine = this.versionAt(v.lsn);
    return mine !== null && versionEquals(mine, v);
  }

  /** The last record at or before `toLsn` whose blocks overlap [block, block+count), after `afterLsn`. */
  lastTouching(block: number, count: number, afterLsn: Lsn, toLsn: Lsn): LogRecord | undefined {
    const recs = this.slice(asLsn(afterLsn + 1), toLsn);
    for (let i = recs.length - 1; i >= 0; i--) {
      const r = recs[i];
      if (r !== undefined && touches(r, block, count)) return r;
    }
    return undefined;
  }
}

export function touches(r: LogRecord, block: number, count: number): boolean {
  if (!coversBlocks(r.kind)) return false;
  return r.block < block + count && block < r.block + r.blockCount;
}
