/** dump-restore's window runs as regular activities: a dead worker is found by a 3 s heartbeat timeout. */
import { windowCrashSuite } from '../helpers/window-crash';

windowCrashSuite('dump-restore', ['freezeSource', 'unfreezeTarget']);
