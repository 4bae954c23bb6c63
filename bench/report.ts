export interface Row {
  scenario: string;
  metric: string;
  baseline?: number | string;
  tollgate: number | string;
  ratio?: number;
  target?: string;
  met?: boolean;
}

export interface BenchReport {
  command: string;
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  settings: Record<string, number>;
  rows: Row[];
  raw: unknown;
}

function cell(value: number | string | undefined): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}

/** Renders docs/benchmarks.md from one run's results. */
export function renderReport(report: BenchReport): string {
  const lines = [
    '# Benchmarks',
    '',
    'What the gateway costs, measured by `npm run bench` against plain Apollo Server 5 on Fastify serving',
    'the same schema and resolvers without authentication, in the same run. Ratios are the figures to',
    'read: the absolute numbers move with the machine and with whatever else it is doing.',
    '',
    `- command: \`${report.command}\``,
    `- date: ${report.date}`,
    `- machine: ${report.machine.cpus} × ${report.machine.cpuModel}, ${report.machine.memoryGiB} GiB, ${report.machine.platform}, Node.js ${report.machine.node}; the load generator (autocannon) runs on the same machine, as do PostgreSQL and Redis`,
    `- settings: ${Object.entries(report.settings).map(([key, value]) => `${key} ${value}`).join(', ')}`,
    '',
    '| scenario | metric | baseline | Tollgate | ratio | target | met |',
    '|---|---|---|---|---|---|---|',
    ...report.rows.map((row) => `| ${row.scenario} | ${row.metric} | ${cell(row.baseline)} | ${cell(row.tollgate)} | ${row.ratio === undefined ? '' : row.ratio.toFixed(2)} | ${row.target ?? ''} | ${row.met === undefined ? '' : row.met ? 'yes' : 'no'} |`),
    '',
    'Raw figures are in `bench/results/latest.json`.',
    '',
  ];
  return lines.join('\n');
}
