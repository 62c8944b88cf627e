/**
 * dump-restore's window: its short steps are local activities (a dead worker is found by the 3 s
 * workflow task timeout), its verification a regular activity with a 2 s heartbeat timeout.
 */
import { windowCrashSuite } from '../helpers/window-crash';

windowCrashSuite('dump-restore', (process.env.CRASH_STEPS ?? 'freezeSource,verifyCopy,swapConfig,unfreezeTarget').split(','));
