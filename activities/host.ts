/**
 * Which worker runs a group of steps that share files on its host (workflows/host-group.ts): the
 * workflow asks on the shared queue, and whichever live worker answers gives its own queue.
 */

/** A worker process's identity and the queue only it polls (absent: it polls the shared queue alone). */
export interface HostClaim {
  workerId: string;
  taskQueue?: string;
}

export function createHostActivities(host: HostClaim) {
  return {
    /** This worker, for a group of steps to run on: cheap, no side effect (a retry may answer from another worker). */
    async claimHost(): Promise<HostClaim> {
      return host;
    },
  };
}

export type HostActivities = ReturnType<typeof createHostActivities>;
