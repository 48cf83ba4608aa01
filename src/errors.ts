/**
 * An error the user can fix (bad path, bad file, bad flag). The CLI prints its message as one line
 * and exits 1; anything else is a bug and keeps its stack trace under --verbose.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

/**
 * Why a text is not JSON, without quoting it: V8's messages echo the text ("Unexpected token 'r',
 * "root:x:0:0"... is not valid JSON"), and a path may point at a file the user never meant to show.
 * Gives the line and column where V8 reports a position.
 */
export function jsonErrorText(error: unknown, text: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const at = /at position (\d+)/.exec(message);
  if (at) {
    const position = Number(at[1]);
    const before = text.slice(0, position);
    const line = before.split('\n').length;
    const column = position - before.lastIndexOf('\n');
    return `invalid JSON at line ${line}, column ${column}`;
  }
  if (/end of (JSON )?input|Unterminated/i.test(message)) return 'invalid JSON (the text ends too early)';
  return 'invalid JSON';
}
