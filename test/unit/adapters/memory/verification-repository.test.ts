import { MemoryVerificationRepository } from '../../../../lib/adapters/memory/verifications.ts';
import { verificationRepositoryContract } from '../../../support/verification-repository-contract.ts';

verificationRepositoryContract('in memory', async () => new MemoryVerificationRepository());
