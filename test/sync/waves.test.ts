import { describe, expect, it } from 'vitest';
import { runWave } from '../../src/sync/waves.ts';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A pass the test drives: drain it, then end it. */
function passes() {
  const started: string[] = [];
  const control = new Map<string, { drain: () => void; end: (err?: Error) => void }>();
  const runType = (type: string, drained: () => void): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      started.push(type);
      control.set(type, { drain: drained, end: (err) => (err ? reject(err) : resolve()) });
    });
  return { started, control, runType };
}

describe('a sweep wave', () => {
  it('is drained once every type has nothing left to prepare, before their last commits end', async () => {
    const { started, control, runType } = passes();
    const { drained, done } = runWave(['Condition', 'Procedure', 'Observation'], 2, runType);
    let isDrained = false;
    let isDone = false;
    void drained.then(() => (isDrained = true));
    void done.then(() => (isDone = true));
    await tick();
    expect(started).toEqual(['Condition', 'Procedure']);
    control.get('Condition')!.drain();
    control.get('Procedure')!.drain();
    await tick();
    // Observation waits for a lane: the wave is not drained yet.
    expect(isDrained).toBe(false);
    control.get('Condition')!.end();
    await tick();
    expect(started).toEqual(['Condition', 'Procedure', 'Observation']);
    control.get('Observation')!.drain();
    await tick();
    expect(isDrained).toBe(true);
    expect(isDone).toBe(false);
    control.get('Procedure')!.end();
    control.get('Observation')!.end(new Error('lock lost'));
    const settled = await done;
    // One settled result per lane: Condition then Observation (rejected), and Procedure.
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'fulfilled']);
  });
});
