/** logical's window runs as local activities: a dead worker is found by the 3 s workflow task timeout. */
import { windowCrashSuite } from '../helpers/window-crash';

windowCrashSuite('logical', ['freezeSource', 'smokeTest']);
