/**
 * dump-restore's window runs as regular activities heartbeating every 500 ms (a dead worker is found by
 * their 2 s heartbeat timeout). The copy (with the verification inside it) is one that a retry does
 * again in full: not one of these steps.
 */
import { windowCrashSuite } from '../helpers/window-crash';

windowCrashSuite('dump-restore', (process.env.CRASH_STEPS ?? 'freezeSource,reconcileSequences,swapConfig,unfreezeTarget').split(','));
