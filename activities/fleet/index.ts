/** The activities of `migrateFleet`: discovery through the Heroku Platform API, and the report's files. */
import type { FleetReport } from '../../contract/fleet-report';
import type { FleetReportFiles } from '../../signals/fleet';
import type { SecretClients } from '../secrets';
import { createFleetDiscovery } from './discovery';
import { writeFleetReportFiles } from './report';

export function createFleetActivities(deps: SecretClients & { fetch?: typeof fetch }) {
  return {
    ...createFleetDiscovery(deps),
    async writeFleetReport(args: { report: FleetReport; reportDir?: string }): Promise<FleetReportFiles> {
      return writeFleetReportFiles(args.report, args.reportDir);
    },
  };
}
