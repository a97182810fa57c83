// The two ways a client command fails, each with its exit code (docs/cli.md#exit-codes).

/** A failure the user can act on, printed as one line: exit 1. The server's refusals are these too. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number = 1;
}

/** The command line cannot be carried out as written (no organization chosen, a file that is not CSV): exit 2, as commander's own usage errors. */
export class UsageError extends CliError {
  override name = 'UsageError';
  override readonly exitCode: number = 2;
}

/** An RFC 9457 problem the platform answered with. */
export interface Problem {
  status: number;
  title: string;
  code?: string;
  detail?: string;
}

/** The server refused: the message is the problem's title, code and detail. */
export class Refusal extends CliError {
  override name = 'Refusal';
  constructor(readonly problem: Problem) {
    const code = problem.code ? ` (${problem.code})` : '';
    const detail = problem.detail && problem.detail !== problem.title ? `: ${problem.detail}` : '';
    super(`${problem.title}${code}${detail}`);
  }
}
