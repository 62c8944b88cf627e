/** Reads a JSON input file for the CLI, so that a syntax error names the file, line and column. */
import { readFileSync } from 'node:fs';

/** V8's JSON.parse says only "at position N"; an editor needs the line and column of N. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const message = (err as Error).message;
    const at = /at position (\d+)/.exec(message);
    // "Unexpected end of JSON input" names no position: the problem is at the end of the file.
    const position = at ? Number(at[1]) : text.length;
    const before = text.slice(0, position).split('\n');
    const line = before.length;
    const column = before[before.length - 1].length + 1;
    const reason = message.replace(/\s*(in JSON )?at position \d+.*$/, '').replace(/ of JSON input$/, ' of file');
    throw new Error(`${file}:${line}:${column}: invalid JSON: ${reason}`, { cause: err });
  }
}

export function readJsonFile(file: string): unknown {
  return parseJsonText(readFileSync(file, 'utf8'), file);
}
