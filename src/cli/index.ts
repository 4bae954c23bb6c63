import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { ConfigError } from '../config.ts';
import { TollgateError } from '../errors.ts';
import { commands, type Command } from './commands.ts';
import { CliUsageError, openCliServices, type CliIo } from './context.ts';

export { CliUsageError, type CliIo } from './context.ts';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

function helpText(): string {
  const lines = ['usage: npx tollgate <command> [options]', '', 'Runs against DATABASE_URL, REDIS_URL and TOLLGATE_MASTER_KEY from the environment.', 'TOLLGATE_OPERATOR names you in the audit trail (default: your OS user name).', ''];
  for (const command of Object.values(commands)) lines.push(`  ${command.usage}`, `      ${command.summary}`);
  lines.push('  policy [--json]', '      Print the effective policy of every field (the same report as `npm run policy`).');
  return `${lines.join('\n')}\n`;
}

/** Runs one CLI command; returns the process exit status. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [group, action, ...rest] = argv;
  if (group === undefined || group === 'help' || group === '--help' || group === '-h') {
    io.stdout.write(helpText());
    return 0;
  }
  if (group === 'policy') return runPolicyReport(argv.slice(1), io);

  const command = commands[`${group} ${action ?? ''}`];
  if (!command) {
    io.stderr.write(`tollgate: unknown command "${[group, action].filter(Boolean).join(' ')}"\n\n${helpText()}`);
    return 2;
  }

  try {
    const args = parseCommandArgs(command, rest);
    const services = await openCliServices(io);
    try {
      return await command.run(services, args, io);
    } finally {
      await services.close();
    }
  } catch (error) {
    return report(error, command, io);
  }
}

function parseCommandArgs(command: Command, rest: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new CliUsageError((error as Error).message);
  }
  if (parsed.positionals.length !== command.positionals.length) {
    throw new CliUsageError(`expected ${command.positionals.length === 0 ? 'no arguments' : command.positionals.join(' ')}, got ${parsed.positionals.length}`);
  }
  return { values: parsed.values as Record<string, string | boolean | string[] | undefined>, positionals: parsed.positionals };
}

function report(error: unknown, command: Command, io: CliIo): number {
  if (error instanceof CliUsageError || error instanceof ConfigError) {
    io.stderr.write(`tollgate: ${error.message}\nusage: npx tollgate ${command.usage}\n`);
    return 2;
  }
  if (error instanceof TollgateError) {
    io.stderr.write(`tollgate: ${error.message}\n`);
    return 1;
  }
  io.stderr.write(`tollgate: ${(error as Error)?.stack ?? String(error)}\n`);
  return 1;
}

/** Runs the project's `policy` script when this build has one, passing the arguments through. */
async function runPolicyReport(args: string[], io: CliIo): Promise<number> {
  const manifest = JSON.parse(await readFile(`${projectRoot}/package.json`, 'utf8')) as { scripts?: Record<string, string> };
  if (!manifest.scripts?.policy) {
    io.stderr.write('tollgate: this build has no policy report (no "policy" script in package.json)\n');
    return 1;
  }
  const child = spawn('npm', ['run', '--silent', 'policy', '--', ...args], { cwd: projectRoot, env: io.env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (chunk: Buffer) => io.stdout.write(chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => io.stderr.write(chunk.toString('utf8')));
  return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));
}
