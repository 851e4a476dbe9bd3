/** Byte sizes as people type them: `4096`, `64KiB`, `10GiB`, `1TiB`. */

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const SIZE_PATTERN = /^(\d+)\s*([A-Za-z]*)$/;

/** Bytes of a size such as `10GiB`; null when it is not one. Decimal units (KB, GB) are refused: they are ambiguous. */
export function parseSize(text: string): number | null {
  const m = SIZE_PATTERN.exec(text.trim());
  if (m === null) return null;
  const unit = UNITS[(m[2] ?? "").toLowerCase()];
  if (unit === undefined) return null;
  const bytes = Number(m[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** A byte count for people: `1 GiB`, `4 KiB`, `1.5 MiB`, `100 B`. */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  const text = Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${text} ${units[i] ?? "B"}`;
}
