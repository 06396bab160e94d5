import { MemoryAuditLog } from '../../../../lib/adapters/memory/identity.ts';
import { auditLogContract } from '../../../support/audit-log-contract.ts';

auditLogContract('in memory', async () => new MemoryAuditLog());
