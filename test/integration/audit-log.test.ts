import { DynamoAuditLog } from '../../lib/adapters/dynamodb/audit.ts';
import { auditLogContract } from '../support/audit-log-contract.ts';
import { freshRegion } from '../support/emulators.ts';

auditLogContract('DynamoDB', async () => {
  const { entry, clients } = await freshRegion();
  return new DynamoAuditLog(clients.documents, entry.table, () => Math.floor(Date.now() / 1000));
});
