import { MemoryExportRepository } from '../../../../lib/adapters/memory/exports.ts';
import { exportRepositoryContract } from '../../../support/export-repository-contract.ts';

exportRepositoryContract('in memory', async () => new MemoryExportRepository());
