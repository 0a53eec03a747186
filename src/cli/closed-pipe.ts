// `wf run ... | head`: when the reader of stdout goes away, the next write fails with EPIPE, which
// Node raises as an unhandled 'error' event (a stack trace). A command-line tool stops quietly
// instead, as one killed by SIGPIPE does; any other stdout error is still reported.
export function exitQuietlyOnClosedStdout(stream: NodeJS.WriteStream = process.stdout, exit: (code: number) => void = (c) => process.exit(c)): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') exit(0);
    else throw e;
  });
}
