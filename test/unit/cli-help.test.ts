/** Every command and option of the CLI and the stack's CLI says what it does in `--help`. */
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { program as cli } from '../../cli/main';
import { program as stack } from '../../stack/cli';

/** `path` of every command, and of every option, that has no help text. */
function undocumented(command: Command, path = command.name()): string[] {
  return [
    ...(command.description() ? [] : [path]),
    ...command.options.filter((o) => !o.description).map((o) => `${path} ${o.flags}`),
    ...command.commands.flatMap((c) => undocumented(c, `${path} ${c.name()}`)),
  ];
}

describe('help text', () => {
  it.each([
    ['pgmig', cli],
    ['stack', stack],
  ])('%s: every command and option has a description', (_name, program) => {
    expect(program.commands.length).toBeGreaterThan(3);
    expect(undocumented(program)).toEqual([]);
  });
});
