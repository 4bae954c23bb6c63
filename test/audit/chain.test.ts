import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { verifyAuditChain } from '../../src/audit/index.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

const gateways: TestGateway[] = [];

async function gatewayWithEvents(count: number): Promise<TestGateway> {
  const gateway = await startTestGateway();
  gateways.push(gateway);
  for (let index = 0; index < count; index += 1) {
    await gateway.tollgate.services.audit.record({ type: 'test.event', reason: `event ${index}`, data: { index, nested: { b: 2, a: [1, 'x'] } } });
  }
  await gateway.tollgate.services.auditChainer.chainAll();
  return gateway;
}

/** Runs tampering SQL with the append-only trigger switched off, as a superuser could. */
async function tamper(gateway: TestGateway, statements: string[]): Promise<void> {
  await sql(gateway, 'ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only');
  for (const statement of statements) await sql(gateway, statement);
  await sql(gateway, 'ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only');
}

/** Links what is committed, as `tollgate audit verify` does, then verifies the chain. */
async function verify(gateway: TestGateway) {
  await gateway.tollgate.services.auditChainer.chainAll();
  return verifyAuditChain(gateway.tollgate.services.database.prisma);
}

afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
});

describe('audit chain', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await gatewayWithEvents(5);
  });

  it('verifies an untouched chain', async () => {
    const result = await verify(gateway);

    expect(result.ok).toBe(true);
    expect(result.checked).toBe(5);
    expect(result.head?.seq).toBe(5n);
  });

  it('rejects UPDATE from the application', async () => {
    const update = gateway.tollgate.services.database.prisma.auditEvent.updateMany({ data: { reason: 'rewritten' } });

    await expect(update).rejects.toThrow(/append-only/);
  });

  it('rejects DELETE from the application', async () => {
    const remove = gateway.tollgate.services.database.prisma.auditEvent.deleteMany({});

    await expect(remove).rejects.toThrow(/append-only/);
  });

  it('rejects TRUNCATE', async () => {
    await expect(sql(gateway, 'TRUNCATE audit_events')).rejects.toThrow(/append-only/);
  });

  it('links each event to the previous hash', async () => {
    const rows = await sql<{ seq: string; prev_hash: Buffer; hash: Buffer }>(gateway, 'SELECT seq, prev_hash, hash FROM audit_events ORDER BY seq');

    expect(rows[0]?.prev_hash.equals(Buffer.alloc(32))).toBe(true);
    expect(rows[1]?.prev_hash.equals(rows[0]?.hash as Buffer)).toBe(true);
  });
});

describe('audit tampering', () => {
  it('names an edited row', async () => {
    const gateway = await gatewayWithEvents(5);
    await tamper(gateway, [`UPDATE audit_events SET reason = 'nothing happened' WHERE seq = 3`]);
    const result = await verify(gateway);

    expect(result.ok).toBe(false);
    expect(result.firstBreak?.seq).toBe(3n);
    expect(result.firstBreak?.reason).toBe('hash_mismatch');
  });

  it('names an edited data member', async () => {
    const gateway = await gatewayWithEvents(5);
    await tamper(gateway, [`UPDATE audit_events SET data = jsonb_set(data, '{index}', '7') WHERE seq = 2`]);
    const result = await verify(gateway);

    expect(result.firstBreak?.seq).toBe(2n);
    expect(result.firstBreak?.reason).toBe('hash_mismatch');
  });

  it('names the row after a deleted one', async () => {
    const gateway = await gatewayWithEvents(5);
    await tamper(gateway, ['DELETE FROM audit_events WHERE seq = 2']);
    const result = await verify(gateway);

    expect(result.firstBreak?.seq).toBe(3n);
    expect(result.firstBreak?.reason).toBe('seq_gap');
  });

  it('names an inserted row', async () => {
    const gateway = await gatewayWithEvents(5);
    await tamper(gateway, [
      'UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 4',
      'UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1000',
      `INSERT INTO audit_events (type, reason, seq, prev_hash, hash) SELECT 'login.succeeded', 'forged', 4, hash, hash FROM audit_events WHERE seq = 3`,
    ]);
    const result = await verify(gateway);

    expect(result.firstBreak?.seq).toBe(4n);
    expect(result.firstBreak?.reason).toBe('hash_mismatch');
  });

  it('names a row inserted outside the chain', async () => {
    const gateway = await gatewayWithEvents(3);
    await tamper(gateway, [`INSERT INTO audit_events (type, reason) VALUES ('login.succeeded', 'forged')`]);
    const result = await verify(gateway);

    expect(result.firstBreak?.reason).toBe('outside_chain');
  });

  it('names the first of two swapped rows', async () => {
    const gateway = await gatewayWithEvents(5);
    await tamper(gateway, [
      'UPDATE audit_events SET seq = 1000 WHERE seq = 2',
      'UPDATE audit_events SET seq = 2 WHERE seq = 3',
      'UPDATE audit_events SET seq = 3 WHERE seq = 1000',
    ]);
    const result = await verify(gateway);

    expect(result.firstBreak?.seq).toBe(2n);
    expect(result.firstBreak?.reason).toBe('prev_hash_mismatch');
  });
});

describe('audit writers', () => {
  it('keeps one chain with concurrent writers on two instances', async () => {
    const first = await startTestGateway();
    gateways.push(first);
    const second = await startTestGateway({ shareWith: first });
    gateways.push(second);
    const before = (await verify(first)).checked;

    const writes = [first, second].flatMap((gateway, instance) =>
      Array.from({ length: 40 }, (_, index) =>
        index % 2 === 0
          ? gateway.tollgate.services.audit.record({ type: 'test.concurrent', data: { instance, index } })
          : gateway.tollgate.services.database.prisma.$transaction((tx) => gateway.tollgate.services.audit.record({ type: 'test.concurrent', data: { instance, index, inTransaction: true } }, tx), { maxWait: 10_000 }),
      ),
    );
    await Promise.all(writes);
    const result = await verify(first);

    expect(result.ok).toBe(true);
    expect(result.checked).toBe(before + 80);
  });

  it('writes nothing when the caller transaction rolls back', async () => {
    const gateway = await gatewayWithEvents(2);
    const prisma = gateway.tollgate.services.database.prisma;
    const rollback = prisma.$transaction(async (tx) => {
      await gateway.tollgate.services.audit.record({ type: 'test.rolled_back' }, tx);
      throw new Error('roll back');
    });
    await expect(rollback).rejects.toThrow('roll back');
    await gateway.tollgate.services.audit.record({ type: 'test.after_rollback' });
    const result = await verify(gateway);

    expect(result.ok).toBe(true);
    expect(result.checked).toBe(3);
  });
});

describe('audit chainer', () => {
  it('leaves a row without a valid MAC outside the chain', async () => {
    const gateway = await gatewayWithEvents(2);
    await sql(gateway, "INSERT INTO audit_events (type, reason, hash) VALUES ('login.succeeded', 'forged', decode(repeat('00', 32), 'hex'))");
    const result = await verify(gateway);

    expect(result.firstBreak?.reason).toBe('outside_chain');
    expect(gateway.logs.text()).toContain('has no valid MAC');
  });

  it('links rows recorded inside a committed transaction', async () => {
    const gateway = await gatewayWithEvents(1);
    const prisma = gateway.tollgate.services.database.prisma;
    await prisma.$transaction((tx) => gateway.tollgate.services.audit.record({ type: 'test.in_transaction' }, tx));
    const result = await verify(gateway);

    expect(result.ok).toBe(true);
    expect(result.checked).toBe(2);
  });

  it('links new rows in the background', async () => {
    const gateway = await gatewayWithEvents(0);
    await gateway.tollgate.services.audit.record({ type: 'test.background' });
    let rows: Array<{ seq: string | null }> = [];
    for (let attempt = 0; attempt < 50; attempt += 1) {
      rows = await sql<{ seq: string | null }>(gateway, "SELECT seq FROM audit_events WHERE type = 'test.background'");
      if (rows[0]?.seq !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    expect(rows[0]?.seq).not.toBeNull();
  });

  it('refuses to change a linked row', async () => {
    const gateway = await gatewayWithEvents(1);

    await expect(sql(gateway, "UPDATE audit_events SET seq = NULL, hash = NULL WHERE seq = 1")).rejects.toThrow(/append-only/);
    await expect(sql(gateway, "UPDATE audit_events SET reason = 'edited' WHERE seq = 1")).rejects.toThrow(/append-only/);
  });
});
