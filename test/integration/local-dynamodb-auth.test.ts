// DynamoDB Local takes any credentials; the local cloud's takes only the local ones, scoped to its
// region, and names every refusal as DynamoDB does (issue 14, point 7).
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { REQUEST_COUNTS_PATH } from '../../scripts/local-cloud/aws-calls.ts';
import { LOCAL_CREDENTIALS } from '../../scripts/local-cloud/cloud.ts';

const endpoint = inject('dynamodbEndpoint');

function client(credentials: { accessKeyId: string; secretAccessKey: string }, region = 'eu-west-1') {
  return new DynamoDBClient({ endpoint, region, credentials, maxAttempts: 1 });
}

async function errorOf(promise: Promise<unknown>): Promise<{ name: string; status?: number }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('the request succeeded');
}

describe('the local DynamoDB verifies signatures', () => {
  it('answers requests signed with the local credentials for either local region', async () => {
    for (const region of ['eu-west-1', 'us-east-1']) {
      const tables = await client(LOCAL_CREDENTIALS, region).send(new ListTablesCommand({}));
      expect(Array.isArray(tables.TableNames)).toBe(true);
    }
  });

  it('refuses a wrong secret, an unknown key and another region with the errors DynamoDB names', async () => {
    const list = new ListTablesCommand({});
    expect(await errorOf(client({ accessKeyId: 'S3RVER', secretAccessKey: 'anything' }).send(list))).toEqual({
      name: 'InvalidSignatureException',
      status: 400,
    });
    expect(
      await errorOf(client({ accessKeyId: 'anything', secretAccessKey: 'anything' }).send(list)),
    ).toEqual({
      name: 'UnrecognizedClientException',
      status: 400,
    });
    expect(await errorOf(client(LOCAL_CREDENTIALS, 'ap-south-1').send(list))).toEqual({
      name: 'IncompleteSignatureException',
      status: 400,
    });
  });

  it('refuses an unsigned request, and one whose body is not the signed one', async () => {
    const unsigned = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.ListTables',
      },
      body: '{}',
    });
    expect(unsigned.status).toBe(400);
    expect(((await unsigned.json()) as { __type: string }).__type).toMatch(
      /#MissingAuthenticationTokenException$/,
    );

    // The SDK signs the body; change it after signing.
    const tampering = client(LOCAL_CREDENTIALS);
    tampering.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { body?: string; headers: Record<string, string> };
        request.body = '{"Limit":1}';
        request.headers['content-length'] = String(request.body.length);
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'tamperAfterSigning' },
    );
    expect(await errorOf(tampering.send(new ListTablesCommand({})))).toEqual({
      name: 'InvalidSignatureException',
      status: 400,
    });
  });
});

describe('the local DynamoDB counts requests', () => {
  it('counts every request by operation and by who signed it, and answers the counts unsigned', async () => {
    const counts = async () => {
      const answer = await fetch(`${endpoint}${REQUEST_COUNTS_PATH}`);
      expect(answer.status).toBe(200);
      return (await answer.json()) as Record<string, number>;
    };
    const before = await counts();
    await client(LOCAL_CREDENTIALS).send(new ListTablesCommand({}));
    await errorOf(
      client({ accessKeyId: 'anything', secretAccessKey: 'anything' }).send(new ListTablesCommand({})),
    );
    const after = await counts();
    const delta = (key: string) => (after[key] ?? 0) - (before[key] ?? 0);
    // At least these (test files beside this one share the emulator): the operator's call, the refused one.
    expect(delta('operator ListTables')).toBeGreaterThanOrEqual(1);
    expect(delta('refused ListTables')).toBeGreaterThanOrEqual(1);
  });
});
