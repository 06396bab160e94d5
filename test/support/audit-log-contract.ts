import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditEntry, AuditLog } from '../../lib/core/ports/audit.ts';
import { newId } from '../../lib/core/shared/ids.ts';

/** The behaviour every AuditLog must have; run against each implementation. */
export function auditLogContract(name: string, makeLog: () => Promise<AuditLog>) {
  describe(`AuditLog contract: ${name}`, () => {
    let audit: AuditLog;
    let alice: string;
    let bob: string;
    let clock = Date.UTC(2026, 0, 1);

    const entry = (overrides: Partial<AuditEntry> = {}): AuditEntry => {
      clock += 1000;
      return {
        eventId: newId('request'),
        at: new Date(clock).toISOString(),
        accountId: alice,
        userName: 'ops',
        keyId: newId('key'),
        action: 'snapshot.share',
        target: { snapshotId: newId('snapshot'), accountId: bob },
        requestId: newId('request'),
        status: 200,
        ...overrides,
      };
    };

    beforeEach(async () => {
      audit = await makeLog();
      alice = newId('account');
      bob = newId('account');
    });

    it('keeps every field of an entry as it was recorded, and nothing else', async () => {
      const recorded = entry({ status: 409, target: { volumeId: newId('volume'), 'dotted.name': 'x' } });
      await audit.record(recorded);
      expect((await audit.list(alice, { limit: 10 })).items).toEqual([recorded]);
    });

    it("lists an account's entries newest first, in pages that cover each entry once", async () => {
      const recorded: AuditEntry[] = [];
      for (let i = 0; i < 5; i++) {
        const mine = entry({ action: `action.${i}` });
        recorded.push(mine);
        await audit.record(mine);
        await audit.record(entry({ accountId: bob }));
      }
      const pages: AuditEntry[][] = [];
      let nextToken: string | undefined;
      do {
        const page = await audit.list(alice, { limit: 2, nextToken });
        pages.push(page.items);
        nextToken = page.nextToken;
      } while (nextToken);
      expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
      expect(pages.flat().map((e) => e.action)).toEqual(recorded.map((e) => e.action).reverse());
      expect(pages.flat().every((e) => e.accountId === alice)).toBe(true);
    });

    it('orders entries of the same instant by event id, the same way on every read', async () => {
      const at = '2026-03-01T00:00:00.000Z';
      const same = [
        entry({ at, eventId: 'req-b' }),
        entry({ at, eventId: 'req-c' }),
        entry({ at, eventId: 'req-a' }),
      ];
      for (const e of same) await audit.record(e);
      const first = await audit.list(alice, { limit: 10 });
      expect(first.items.map((e) => e.eventId)).toEqual(['req-c', 'req-b', 'req-a']);
      const second = await audit.list(alice, { limit: 1 });
      const rest = await audit.list(alice, { limit: 10, nextToken: second.nextToken });
      expect([...second.items, ...rest.items].map((e) => e.eventId)).toEqual(['req-c', 'req-b', 'req-a']);
    });

    it('records an event once, however often it is recorded (a retried request)', async () => {
      const once = entry();
      await audit.record(once);
      await audit.record(structuredClone(once));
      await audit.record(once);
      expect((await audit.list(alice, { limit: 10 })).items).toEqual([once]);
    });

    it('answers an account with no entries with an empty page and no token', async () => {
      await audit.record(entry());
      expect(await audit.list(newId('account'), { limit: 10 })).toEqual({ items: [] });
    });
  });
}
