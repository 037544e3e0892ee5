/**
 * One wave of a sweep (engine.ts): its types run a few at a time, and the sweep learns both when
 * every type has nothing more to prepare (the next wave may start) and when every pass settled.
 */

/**
 * Runs the types of one wave, `lanes` at a time.
 * @param wave - the wave's types.
 * @param lanes - passes at once.
 * @param runType - runs one type's pass; calls `drained` once it has nothing more to prepare.
 * @returns `drained` (every type has nothing more to prepare) and `done` (every pass settled).
 */
export function runWave(
  wave: readonly string[],
  lanes: number,
  runType: (type: string, drained: () => void) => Promise<void>,
): { drained: Promise<void>; done: Promise<PromiseSettledResult<void>[]> } {
  const left = new Set(wave);
  let allDrained!: () => void;
  const drained = new Promise<void>((resolve) => (allDrained = resolve));
  const mark = (type: string): void => {
    if (left.delete(type) && left.size === 0) {
      allDrained();
    }
  };
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let type = wave[next++]; type !== undefined; type = wave[next++]) {
      const t = type;
      await runType(t, () => mark(t));
    }
  };
  const done = Promise.allSettled(Array.from({ length: Math.min(lanes, wave.length) }, lane));
  return { drained, done };
}
