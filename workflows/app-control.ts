/**
 * The application around the cutover (seed 004's runbook): no one-off dynos running, maintenance on,
 * workers scaled to 0 before the freeze; one coordinated restart after the DATABASE_URL swap (never
 * some processes on the old database and some on the new); HTTP health checks with the smoke test;
 * maintenance off and workers back to their recorded counts at go-live. Each step registers its undo.
 */
import { activities } from './activity-options';
import type { MigrationInput } from '../contract/input';
import type { Progress } from './progress';
import type { Compensations } from './saga';

const acts = activities.appControl;

export class AppControl {
  private scaled?: Record<string, number>;

  constructor(
    private readonly app: MigrationInput['app'],
    private readonly progress: Progress,
  ) {}

  private get heroku() {
    const h = this.app?.heroku;
    return h ? { app: h.app, token: h.token, ...(h.apiUrl ? { apiUrl: h.apiUrl } : {}) } : undefined;
  }

  /** Before the freeze: refuse while one-off dynos run (they would keep writing), maintenance on, workers to 0. */
  async quiesce(saga: Compensations): Promise<void> {
    const heroku = this.heroku;
    const config = this.app?.heroku;
    if (!heroku || !config) return;
    await this.progress.step('check-one-off-dynos', 'freezing-source', () => acts.herokuRefuseOneOffDynos({ heroku }));
    if (config.maintenance) {
      saga.register('maintenance-off', () => acts.herokuMaintenance({ heroku, on: false }), 'application');
      await this.progress.step('maintenance-on', 'freezing-source', () => acts.herokuMaintenance({ heroku, on: true }));
    }
    // The counts are read before anything changes, so the undo has them even if the scale-down dies half-way.
    const formation = await this.progress.step('read-formation', 'freezing-source', () =>
      acts.herokuReadFormation({ heroku, types: config.scaleDown }),
    );
    const counts = formation.counts;
    this.scaled = counts;
    saga.register('scale-up', () => acts.herokuScaleUp({ heroku, counts }), 'application');
    await this.progress.step('scale-down', 'freezing-source', () => acts.herokuScaleDown({ heroku, types: config.scaleDown }));
  }

  /** Registered before the config swap's own undo, so on rollback it runs after the old value is back. */
  registerRestartUndo(saga: Compensations): void {
    if (this.restarts()) saga.register('restart-app', () => this.restartNow(), 'application');
  }

  async restart(): Promise<void> {
    if (this.restarts()) await this.progress.step('restart-app', 'smoke-testing', () => this.restartNow());
  }

  async healthChecks(): Promise<void> {
    const urls = this.app?.healthUrls ?? [];
    if (urls.length) await this.progress.step('health-checks', 'smoke-testing', () => acts.httpHealthChecks({ urls }));
  }

  /** Go-live: the application takes traffic and writes again. */
  async resume(): Promise<void> {
    const heroku = this.heroku;
    if (!heroku) return;
    if (this.scaled && Object.keys(this.scaled).length) {
      const counts = this.scaled;
      await this.progress.step('scale-up', 'going-live', () => acts.herokuScaleUp({ heroku, counts }));
    }
    if (this.app?.heroku?.maintenance)
      await this.progress.step('maintenance-off', 'going-live', () => acts.herokuMaintenance({ heroku, on: false }));
  }

  private restarts(): boolean {
    return (!!this.app?.heroku && this.app.heroku.restart) || (this.app?.ecs ?? []).length > 0;
  }

  private async restartNow(): Promise<void> {
    const heroku = this.heroku;
    if (heroku && this.app?.heroku?.restart) await acts.herokuRestartAll({ heroku });
    for (const service of this.app?.ecs ?? []) await acts.ecsForceNewDeployment(service);
  }
}
