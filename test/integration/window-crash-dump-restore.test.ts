/**
 * dump-restore's window: its short steps are local activities (a dead worker is found by the 3 s
 * workflow task timeout). The copy (with the verification inside it) is a regular activity that a
 * retry does again in full: not one of these steps.
 */
import { windowCrashSuite } from '../helpers/window-crash';

windowCrashSuite('dump-restore', (process.env.CRASH_STEPS ?? 'freezeSource,reconcileSequences,swapConfig,unfreezeTarget').split(','));
