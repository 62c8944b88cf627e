// ESLint flat config: typescript-eslint with type information (projectService reads tsconfig.json),
// in the spirit of Temporal's samples-typescript, plus sandbox guards for Workflow code.
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Every Node built-in, bare and `node:`-prefixed. The Workflow bundler only lets `assert`, `url` and `util`
// through, and those as shims (util = TextEncoder/TextDecoder, url = URL/URLSearchParams, both globals
// in the sandbox anyway), so Workflow code has no reason to import any of them.
const nodeBuiltins = [...new Set(builtinModules.flatMap((m) => (m.startsWith('node:') ? [m] : [m, `node:${m}`])))];

const sandboxMessage = 'Workflow code runs in the deterministic Temporal sandbox: do this in an Activity.';

export default defineConfig(
  globalIgnores([
    '**/node_modules/',
    'test/histories/',
    'schemas/',
    '.stack/',
    'coverage/',
    // Generated or bundled JavaScript (e.g. a prebuilt workflow bundle); the project's sources are TypeScript.
    '**/*.js',
  ]),

  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        // import.meta.dirname needs Node 20.11; package.json allows any Node 20.
        tsconfigRootDir: path.dirname(fileURLToPath(import.meta.url)),
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // The no-unsafe-* family flags every use of an `any`. `pg` types query rows as `any` (QueryResult<any>),
      // and the AWS SDK / JSON.parse results flow through the same way, so these rules would report
      // hundreds of property reads on rows without finding bugs; a row's shape is stated once at its query
      // (`query<Row>()`, a cast) instead. The promise and thenable rules below are what catch real bugs.
      // Everything else in recommendedTypeChecked stays on (only-throw-error, unbound-method, no-base-to-string,
      // restrict-template-expressions, no-unnecessary-type-assertion, ...).
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',

      // A forgotten `await` on an Activity, a Workflow API, a pg query or a child process is the bug class
      // that matters most here (samples-typescript turns this on for the same reason). `void p` marks a
      // promise deliberately left running.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // `return p` (without await) inside try/catch/finally skips the catch and runs the finally too early.
      // Only that correctness case is enforced, not the stylistic "no redundant await" half of in-try-catch.
      '@typescript-eslint/return-await': ['error', 'error-handling-correctness-only'],

      // Type-only imports are erased, so they never drag a module (activities, pg, the AWS SDK) into the
      // Workflow bundle. Inline `type` specifiers match how the code already mixes values and types.
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',

      // Off: an `async` function without `await` is how this code implements Promise-returning interfaces
      // (activity stubs in tests, workflow hooks, fakes); it is not a bug. A missing `await` where one is
      // needed is what no-floating-promises / await-thenable / return-await catch.
      '@typescript-eslint/require-await': 'off',

      // tsc already enforces noUnusedLocals / noUnusedParameters (and `npm test` runs tsc); a second report is noise.
      '@typescript-eslint/no-unused-vars': 'off',
    },
  },

  // Plain JavaScript (this file): not part of tsconfig.json, so no type information.
  {
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
  },

  // Workflow code is bundled into the Temporal sandbox (workers/worker.ts: workflowsPath = workflows/).
  // It must be deterministic and must not touch the host: no Node built-ins, no I/O libraries, no Activity
  // implementations (only their types, for proxyActivities<typeof ...>()).
  {
    files: ['workflows/**/*.ts'],
    rules: {
      // Core rule for Node built-ins (type imports included: workflow code has no use for Node types), the
      // typescript-eslint rule for packages whose *types* workflows may import. Their options do not overlap.
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({
            name,
            message: `Node built-in '${name}' is not available in the Workflow sandbox. ${sandboxMessage}`,
          })),
        },
      ],
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/activities', '**/activities/**'],
              allowTypeImports: true,
              message: 'Workflows may only import Activity types (`import type`); call Activities through proxyActivities().',
            },
            {
              group: ['@temporalio/activity', '@temporalio/client', '@temporalio/worker', '@temporalio/common/lib/internal-non-workflow'],
              allowTypeImports: true,
              message: 'Not allowed in Workflow code (the Temporal bundler rejects it); use @temporalio/workflow.',
            },
            {
              group: ['pg', 'pg/**', 'pino', 'pino/**', 'dotenv', 'dotenv/**', 'commander', '@aws-sdk/**'],
              allowTypeImports: true,
              message: `I/O library in Workflow code. ${sandboxMessage}`,
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        ...['process', 'require', 'module', 'exports', '__dirname', '__filename'].map((name) => ({
          name,
          message: `'${name}' is a Node host global, undefined in the Workflow sandbox. ${sandboxMessage}`,
        })),
        ...['Buffer', 'fetch', 'performance', 'crypto', 'navigator', 'structuredClone', 'queueMicrotask'].map((name) => ({
          name,
          message: `'${name}' is undefined in the Workflow sandbox (only Temporal's globals are injected). ${sandboxMessage}`,
        })),
        // setTimeout / clearTimeout are fine: the sandbox replaces them with durable Temporal timers.
        ...['setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'].map((name) => ({
          name,
          message: `'${name}' is undefined in the Workflow sandbox; use sleep() or setTimeout() (a durable timer) in a loop.`,
        })),
        ...['WeakRef', 'FinalizationRegistry'].map((name) => ({
          name,
          message: `'${name}' depends on garbage collection, which is non-deterministic; the sandbox throws on it.`,
        })),
      ],
      'no-restricted-properties': [
        'error',
        { object: 'crypto', property: 'randomUUID', message: 'Use uuid4() from @temporalio/workflow (deterministic on replay).' },
        { object: 'crypto', property: 'getRandomValues', message: 'Use Math.random() (seeded by the sandbox) or uuid4().' },
        { object: 'performance', property: 'now', message: 'Use Date.now() (workflow time, deterministic on replay).' },
        ...['process', 'require', 'Buffer', 'fetch', 'performance', 'crypto', 'setInterval', 'setImmediate'].map((property) => ({
          object: 'globalThis',
          property,
          message: `'globalThis.${property}' is undefined or non-deterministic in the Workflow sandbox. ${sandboxMessage}`,
        })),
      ],
    },
  },
);
