/** The CLI's one line per pending activity's heartbeat: each copy shows percent, rate and ETA. */
import { describe, expect, it } from 'vitest';
import { heartbeatText } from '../../cli/follow';

const progress = {
  tablesDone: 3,
  tablesTotal: 11,
  bytesDone: 50e6,
  bytesTotal: 100e6,
  rows: 1000,
  percent: 50,
  bytesPerSecond: 10e6,
  etaSeconds: 5,
};

describe('heartbeat lines', () => {
  it('the freeze-copy: engine, percent, rate, ETA and the tables verified', () => {
    expect(heartbeatText('copyAndVerify', { ...progress, engine: 'pgcopydb', stage: 'copying', tablesVerified: 2, elapsedMs: 5000 })).toBe(
      '  copyAndVerify: pgcopydb copy 50% (3/11 tables, 9.5 MB/s, ETA 5.0 s), 2/11 tables verified',
    );
  });

  it('the snapshot copy of a CDC method: percent, rate, ETA and pgcopydb step', () => {
    expect(heartbeatText('copySnapshot', { ...progress, stage: 'STEP 4: copy data from source to target in 2 sub-processes' })).toBe(
      '  copySnapshot: copy 50% (3/11 tables, 9.5 MB/s, ETA 5.0 s) (STEP 4: copy data from source to target in 2 sub-processes)',
    );
  });

  it('the triggers method: the copy inside the apply', () => {
    expect(heartbeatText('copyAndApply', { copy: progress } as never)).toBe('  copyAndApply: copy 50% (3/11 tables, 9.5 MB/s, ETA 5.0 s)');
  });

  it('nothing for details it does not know', () => {
    expect(heartbeatText('waitForReplication', { foo: 1 })).toBeUndefined();
  });
});
