/**
 * logical's window runs as local activities: a dead worker is found by the 3 s workflow task timeout.
 * The freeze-point verification runs beside the window as a regular activity: killed after its
 * snapshots, it is reported as not run.
 */
import { windowCrashSuite } from '../helpers/window-crash';

windowCrashSuite('logical', ['freezeSource', 'smokeTest', 'verifyAtFreezePoint']);
