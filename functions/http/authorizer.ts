import type {
  APIGatewayRequestAuthorizerEventV2,
  APIGatewaySimpleAuthorizerWithContextResult,
} from 'aws-lambda';
import { identityPorts } from '../../lib/aws/dynamodb.ts';
import { authorizerContext } from '../../lib/http/stack.ts';
import { servicesOver } from '../../lib/root.ts';
import { authenticator } from '../../lib/wiring/identity.ts';

/** Identity is all the authorizer reads (its bundle carries no other service, no S3 or SQS client). */
const service = servicesOver(identityPorts);

/**
 * The HTTP API's Lambda authorizer (simple responses, payload 2.0, no result cache so a revoked key
 * stops at once). It resolves the API key to the caller and hands it to the route as context. It
 * never says no: API Gateway would answer a "no" with a 403 it does not let us change, while a bad
 * key must be a 401 like a missing one. A request it could not resolve reaches the route without a
 * caller, and the route's stack answers 401 before doing anything else; one it could not resolve
 * because the identity table failed for now reaches it marked so, and the route answers 503 with
 * `Retry-After` (a throwing authorizer would make API Gateway answer a bare 500).
 */
export const handler = async (
  event: APIGatewayRequestAuthorizerEventV2,
): Promise<APIGatewaySimpleAuthorizerWithContextResult<Record<string, string>>> => {
  const header = event.headers?.authorization ?? event.headers?.Authorization;
  const context = await authorizerContext(() => service(authenticator)(header));
  return { isAuthorized: true, context };
};
