import { describe, expect, it } from "vitest";
import { ERROR_CODES, VolumeError as CoreVolumeError } from "../../src/core/errors.js";
import {
  clientError,
  CorruptError,
  DiskFailedError,
  FencedError,
  InvalidArgumentError,
  NoQuorumError,
  NotFoundError,
  OutOfRangeError,
  StaleEpochError,
  VolumeBusyError,
  VolumeError,
} from "../../src/client/index.js";
import { exitCodeOfError } from "../../src/cli/context.js";

const CLASS_OF = {
  STALE_EPOCH: StaleEpochError,
  FENCED: FencedError,
  VOLUME_BUSY: VolumeBusyError,
  NO_QUORUM: NoQuorumError,
  NOT_FOUND: NotFoundError,
  OUT_OF_RANGE: OutOfRangeError,
  INVALID_ARGUMENT: InvalidArgumentError,
  CORRUPT: CorruptError,
  DISK_FAILED: DiskFailedError,
} as const;

describe("client errors", () => {
  it("has one class per design.md code, each a VolumeError with that code", () => {
    expect(Object.keys(CLASS_OF).sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ERROR_CODES) {
      const cause = new Error("underneath");
      const e = clientError(code, `Cannot do it: ${code}`, { cause });
      expect(e).toBeInstanceOf(CLASS_OF[code]);
      expect(e).toBeInstanceOf(VolumeError);
      expect(e).toBeInstanceOf(CoreVolumeError);
      expect(e.code).toBe(code);
      expect(e.message).toBe(`Cannot do it: ${code}`);
      expect(e.cause).toBe(cause);
      expect(e.name).toBe(CLASS_OF[code].name);
    }
  });

  it("maps each code to the volctl exit code that tells it apart", () => {
    const expected = { INVALID_ARGUMENT: 2, OUT_OF_RANGE: 2, NOT_FOUND: 3, NO_QUORUM: 4, VOLUME_BUSY: 5, FENCED: 5, STALE_EPOCH: 5, CORRUPT: 1, DISK_FAILED: 1 } as const;
    for (const code of ERROR_CODES) expect(exitCodeOfError(code), code).toBe(expected[code]);
  });
});
