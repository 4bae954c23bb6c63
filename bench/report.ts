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

/**
 * Findings from profiles of the missed targets (`node --cpu-prof` on the gateway process under the
 * same load, 2026-12-04), kept beside the generated table so every run restates them.
 */
const knownGaps = [
  '## Reading the figures',
  '',
  '- Each side runs twice, alternating, and the table gives the mean. The load generator, PostgreSQL',
  '  and Redis share the same two cores, so a ratio moves by as much as 0.3 between runs. Scenario 1',
  '  measured 1.04, 1.40 and 1.32, and scenario 3 measured 1.09 and 1.41, in runs 10 to 30 minutes apart.',
  '',
  '## Where the time goes in the missed targets',
  '',
  '- **Refresh rotation (4).** Audit events used to be chained under one advisory lock held to commit,',
  '  which left the gateway 28 % idle at 79 rotations/s. They are now linked after commit. The gateway',
  '  is then 5 % idle at 88–97 rotations/s, so the rest is CPU. The Prisma client runtime takes 31 % of',
  '  the profile and socket writes 11 %, for about 22 SQL statements per rotation (risk lookups, the',
  '  locking reads, four writes, two audit rows).',
  '- To close that gap, the rotation would go through the pg driver as two statements: a locking read',
  '  that joins token, session and device, and one CTE that writes the successor, the predecessor, the',
  '  session and the audit rows. The risk facts would come from the same join.',
  '- **DPoP-bound requests (2).** Every request carries a new proof, so its ES256 signature is verified',
  '  every time and its `jti` written to Redis; neither can be cached. Proofs are verified with',
  '  node:crypto (about twice as fast as through a WebCrypto key). What remains is one ECDSA',
  '  verification per request on a core shared with the load generator; closing the gap needs more',
  '  cores per gateway than the load generator takes, or proof verification in a worker pool.',
  '',
];

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
    ...knownGaps,
  ];
  return lines.join('\n');
}
