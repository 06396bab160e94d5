// The identity table's CloudFormation properties (AWS::DynamoDB::GlobalTable), for serverless.yml:
// infra/identity-table.yml plus its name (the same in every region) and one replica per region of
// infra/regions.json, the deploying region and the identity region included. Only the identity
// region's stack creates it (condition IsIdentityRegion); CloudFormation creates the replicas.
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { parse } = require('yaml');

module.exports = async ({ resolveVariable }) => {
  const stage = await resolveVariable('sls:stage');
  const region = await resolveVariable('self:provider.region');
  const identityRegion = await resolveVariable('self:custom.identityRegion');
  const properties = parse(readFileSync(join(__dirname, 'identity-table.yml'), 'utf8'));
  const registry = JSON.parse(readFileSync(join(__dirname, 'regions.json'), 'utf8'));
  const regions = [...new Set([identityRegion, region, ...Object.keys(registry)])].sort();
  return {
    TableName: `volsnap-${stage}-identity`,
    ...properties,
    Replicas: regions.map((name) => ({
      Region: name,
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
    })),
  };
};
