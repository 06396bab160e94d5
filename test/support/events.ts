import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';

/** A minimal HTTP API v2 event, as API Gateway (or the local cloud) would send it. */
export function httpEvent(
  overrides: Partial<APIGatewayProxyEventV2> & { method?: string } = {},
): APIGatewayProxyEventV2 {
  const { method = 'GET', ...rest } = overrides;
  return {
    version: '2.0',
    routeKey: `${method} /v1/test`,
    rawPath: '/v1/test',
    rawQueryString: '',
    headers: {},
    isBase64Encoded: false,
    requestContext: {
      accountId: 'test',
      apiId: 'test',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method, path: '/v1/test', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'req-test',
      routeKey: `${method} /v1/test`,
      stage: '$default',
      time: '',
      timeEpoch: 0,
    },
    ...rest,
  };
}

export const lambdaContext = {
  awsRequestId: 'aws-req',
  getRemainingTimeInMillis: () => 10_000,
} as unknown as Context;
