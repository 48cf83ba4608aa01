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
