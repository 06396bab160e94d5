// DynamoDB Local takes any credentials. This proxy in front of it (same process as its guard, on
// loopback) verifies each request's SigV4 signature as DynamoDB does, against the local credentials
// and region(s), and answers failures with DynamoDB's JSON errors, so the SDK names them as AWS would.
import { createHash } from 'node:crypto';
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import { type SigV4FailureCode, verifySigV4 } from '../../lib/http/sigv4.ts';
import { type CallRecorder, dynamodbNeeds, roleOfKey, secretLookup, signingScope } from './aws-calls.ts';

export interface DynamoProxyOptions {
  /** Where the proxy listens (127.0.0.1). */
  port: number;
  /** DynamoDB Local's own port (127.0.0.1). */
  targetPort: number;
  region: string | readonly string[];
  /** The operator's credentials (provisioning, seeding, tests). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Regions whose functions' role credentials are accepted too (./aws-calls.ts). */
  roles?: readonly string[];
  /** Records what each verified role call asks DynamoDB to authorize. */
  recorder?: CallRecorder;
}

/** DynamoDB's names for what SigV4 verification refuses (all 400, as DynamoDB answers them). */
const DYNAMODB_CODE: Record<SigV4FailureCode, string> = {
  AccessDenied: 'MissingAuthenticationTokenException',
  SignatureDoesNotMatch: 'InvalidSignatureException',
  InvalidAccessKeyId: 'UnrecognizedClientException',
  RequestTimeTooSkewed: 'InvalidSignatureException',
  AuthorizationQueryParametersError: 'IncompleteSignatureException',
  AuthorizationHeaderMalformed: 'IncompleteSignatureException',
  InvalidArgument: 'IncompleteSignatureException',
  InvalidRequest: 'IncompleteSignatureException',
};

/** Where the proxy answers how many requests of each operation it served (the local S3's path too). */
export const REQUEST_COUNTS_PATH = '/_volsnap/request-counts';

/** DynamoDB's largest request (BatchWriteItem) is 16 MiB; a body past that is refused unread. */
const MAX_BODY_BYTES = 16 * 1024 * 1024 + 64 * 1024;

/**
 * Starts the verifying proxy. Each request body is read whole (DynamoDB bodies are small JSON) to
 * hash it, then the request goes to DynamoDB Local unchanged and its response comes back streamed.
 * As the local S3 does, it counts the requests by operation (`GetItem`, every one, whoever signed)
 * and answers GET {@link REQUEST_COUNTS_PATH} with the counts so far (unsigned, loopback only).
 */
export function startDynamoProxy(options: DynamoProxyOptions): Promise<Server> {
  const counts: Record<string, number> = {};
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === REQUEST_COUNTS_PATH) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(counts));
      return;
    }
    const operation = String(req.headers['x-amz-target'] ?? '').replace(/^DynamoDB_\d+\./, '');
    counts[operation] = (counts[operation] ?? 0) + 1;
    void handle(req, res, options).catch((error: Error) => {
      if (!res.headersSent) respondError(res, 500, 'InternalServerError', error.message);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve(server));
  });
}

async function handle(req: IncomingMessage, res: ServerResponse, options: DynamoProxyOptions) {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      respondError(res, 413, 'ValidationException', 'Request body too large.');
      return;
    }
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks);
  const payloadHash = createHash('sha256').update(body).digest('hex');
  const claimed = req.headers['x-amz-content-sha256'];
  if (claimed !== undefined && claimed !== payloadHash) {
    respondError(res, 400, 'InvalidSignatureException', 'The x-amz-content-sha256 does not match the body.');
    return;
  }
  const result = verifySigV4(
    { method: req.method ?? 'POST', target: req.url ?? '/', headers: req.headersDistinct, payloadHash },
    {
      service: 'dynamodb',
      region: options.region,
      secretFor: secretLookup(options.credentials, options.roles),
      nowMs: Date.now(),
    },
  );
  if (!result.ok) {
    respondError(res, 400, DYNAMODB_CODE[result.code], result.message);
    return;
  }
  if (options.recorder) {
    record(req, body, result.accessKeyId, { roles: options.roles ?? [], recorder: options.recorder });
  }
  await new Promise<void>((resolve, reject) => {
    const upstream = request(
      {
        host: '127.0.0.1',
        port: options.targetPort,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: keepAlive,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.once('end', resolve);
        answer.once('error', reject);
      },
    );
    upstream.once('error', reject);
    upstream.end(body);
  });
}

/** Records the authorizations of a call a role signed (the operation from `X-Amz-Target`). */
function record(
  req: IncomingMessage,
  body: Buffer,
  accessKeyId: string,
  options: Required<Pick<DynamoProxyOptions, 'roles' | 'recorder'>>,
): void {
  const role = roleOfKey(accessKeyId, options.roles);
  const region = signingScope(req.headers, req.url ?? '/')?.region;
  if (role === undefined || region === undefined) return;
  const operation = String(req.headers['x-amz-target'] ?? '').replace(/^DynamoDB_\d+\./, '');
  let parsed: Parameters<typeof dynamodbNeeds>[2];
  try {
    parsed = JSON.parse(body.toString('utf8') || '{}');
  } catch {
    return; // DynamoDB Local answers the malformed body itself
  }
  options.recorder.record(
    dynamodbNeeds(region, operation, parsed).map((need) => ({
      role,
      service: 'dynamodb' as const,
      operation,
      ...need,
    })),
  );
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });

function respondError(res: ServerResponse, status: number, code: string, message: string) {
  const text = JSON.stringify({ __type: `com.amazon.coral.service#${code}`, message });
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(text),
    'x-amzn-errortype': code,
  });
  res.end(text);
}
