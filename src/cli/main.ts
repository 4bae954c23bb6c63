import { runCli } from './index.ts';

// The `tollgate` command. SIGINT stops long work between batches; a second SIGINT exits at once.
const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(130);
  process.stderr.write('stopping after the current batch (Ctrl-C again to exit now)\n');
  controller.abort();
});

const status = await runCli(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr, signal: controller.signal });
process.exit(status);
