/**
 * What the global setups (test/global-setup.ts, test/fast-global-setup.ts) hand the test files
 * through vitest's provide/inject. Types only: tsconfig.json includes test/, so no import is needed.
 */
export {};

declare module 'vitest' {
  export interface ProvidedContext {
    /** host:port of the Temporal server the workflow tests (test/workflow) use. */
    temporalAddress: string;
    temporalNamespace: string;
  }
}
