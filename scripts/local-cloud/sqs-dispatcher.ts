import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { SQSEvent, SQSRecord } from 'aws-lambda';
import pLimit, { type LimitFunction } from 'p-limit';
import { type CallRecorder, roleOfKey, signingScope, sqsNeeds } from './aws-calls.ts';

/** Delivers one batch to the queue's consumer; returns the ids of the messages that failed. */
export type Consumer = (event: SQSEvent) => Promise<string[]>;

interface Message {
  id: string;
  body: string;
  receiveCount: number;
  sentAt: number;
  attributes: Record<string, { DataType: string; StringValue?: string }>;
}

export interface QueueOptions {
  name: string;
  region: string;
  /** Deliveries before a message goes to the dead-letter list (the redrive policy's maxReceiveCount). */
  maxReceiveCount: number;
  /** Delay before a failed message is delivered again (the visibility timeout, shortened locally). */
  retryDelayMs: number;
  /**
   * Deliveries under way at once at most (unbounded without); the others wait for a slot, not yet
   * received. On AWS each delivery is a Lambda instance of its own, with its own memory; here every
   * one runs in the region's one process, so a queue full of parts must not run them all at once.
   */
  maxConcurrency?: number;
  consumer: Consumer;
  onDeadLetter?: (message: { id: string; body: string }) => void;
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

/**
 * An in-process stand-in for SQS: an HTTP endpoint speaking the SQS JSON protocol (SendMessage,
 * SendMessageBatch, GetQueueUrl) that the unmodified SQS client in the handlers talks to, and a
 * dispatcher that invokes the queue's consumer with SQS events, redelivers failed messages and
 * dead-letters them after `maxReceiveCount` deliveries. Like SQS it is a doorbell: at-least-once.
 */
export class LocalQueues {
  readonly #queues = new Map<string, QueueOptions>();
  /** Each queue's delivery slots ({@link QueueOptions.maxConcurrency}). */
  readonly #slots = new Map<string, LimitFunction>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly deadLetters: { queue: string; id: string; body: string }[] = [];
  #server: Server | undefined;
  #closed = false;

  /**
   * With a recorder, each call signed by one of `roles` is recorded with the authorization SQS
   * would make (the signature is not checked here: the queue is only reachable on loopback).
   */
  constructor(private readonly recording?: { roles: readonly string[]; recorder: CallRecorder }) {}

  add(queue: QueueOptions): void {
    this.#queues.set(queue.name, queue);
    if (queue.maxConcurrency !== undefined) this.#slots.set(queue.name, pLimit(queue.maxConcurrency));
  }

  queueUrl(port: number, name: string): string {
    return `http://127.0.0.1:${port}/000000000000/${name}`;
  }

  listen(port: number): Promise<number> {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error) =>
        reply(res, 500, { __type: 'InternalError', message: String(error) }),
      );
    });
    return new Promise((resolve, reject) => {
      this.#server?.once('error', reject);
      this.#server?.listen(port, '127.0.0.1', () => {
        const address = this.#server?.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  /** Stops accepting messages and waits for deliveries under way. */
  async close(): Promise<void> {
    this.#closed = true;
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    await Promise.allSettled([...this.#inFlight]);
  }

  /** Resolves when no delivery is under way or scheduled (for tests). */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = String(req.headers['x-amz-target'] ?? '');
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    const action = target.replace(/^AmazonSQS\./, '');
    this.#record(
      req,
      action,
      String(input.QueueName ?? input.QueueUrl ?? '')
        .split('/')
        .pop() ?? '',
    );
    if (action === 'GetQueueUrl') {
      if (!this.#queues.has(input.QueueName)) return reply(res, 400, nonExistentQueue());
      const host = req.headers.host ?? '127.0.0.1';
      return reply(res, 200, { QueueUrl: `http://${host}/000000000000/${input.QueueName}` });
    }
    const queue = this.#queues.get(
      String(input.QueueUrl ?? '')
        .split('/')
        .pop() ?? '',
    );
    if (!queue) return reply(res, 400, nonExistentQueue());
    if (action === 'SendMessage') {
      const id = this.#enqueue(queue, input.MessageBody, input.DelaySeconds, input.MessageAttributes);
      return reply(res, 200, { MessageId: id, MD5OfMessageBody: md5(input.MessageBody) });
    }
    if (action === 'SendMessageBatch') {
      const successful = (
        input.Entries as {
          Id: string;
          MessageBody: string;
          DelaySeconds?: number;
          MessageAttributes?: Message['attributes'];
        }[]
      ).map((entry) => ({
        Id: entry.Id,
        MessageId: this.#enqueue(queue, entry.MessageBody, entry.DelaySeconds, entry.MessageAttributes),
        MD5OfMessageBody: md5(entry.MessageBody),
      }));
      return reply(res, 200, { Successful: successful, Failed: [] });
    }
    return reply(res, 400, {
      __type: 'com.amazonaws.sqs#UnsupportedOperation',
      message: `${action} is not supported by the local queue.`,
    });
  }

  #record(req: IncomingMessage, action: string, queueName: string): void {
    if (!this.recording) return;
    const scope = signingScope(req.headers, req.url ?? '/');
    const role = roleOfKey(scope?.accessKeyId ?? '', this.recording.roles);
    const queue = this.#queues.get(queueName);
    if (role === undefined || scope === undefined) return;
    this.recording.recorder.record(
      sqsNeeds(queue?.region ?? scope.region, action, queueName).map((need) => ({
        role,
        service: 'sqs' as const,
        operation: action,
        ...need,
      })),
    );
  }

  #enqueue(
    queue: QueueOptions,
    body: string,
    delaySeconds = 0,
    attributes: Message['attributes'] = {},
  ): string {
    if (this.#closed) throw new Error('queue closed');
    const message: Message = { id: randomUUID(), body, receiveCount: 0, sentAt: Date.now(), attributes };
    this.#schedule(queue, message, delaySeconds * 1000);
    return message.id;
  }

  #schedule(queue: QueueOptions, message: Message, delayMs: number): void {
    const slots = this.#slots.get(queue.name);
    const delivery = new Promise<void>((resolve) => setTimeout(resolve, delayMs)).then(() =>
      slots ? slots(() => this.#deliver(queue, message)) : this.#deliver(queue, message),
    );
    this.#inFlight.add(delivery);
    void delivery.finally(() => this.#inFlight.delete(delivery));
  }

  async #deliver(queue: QueueOptions, message: Message): Promise<void> {
    if (this.#closed) return;
    message.receiveCount += 1;
    const record: SQSRecord = {
      messageId: message.id,
      receiptHandle: randomUUID(),
      body: message.body,
      attributes: {
        ApproximateReceiveCount: String(message.receiveCount),
        SentTimestamp: String(message.sentAt),
        SenderId: 'local',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: Object.fromEntries(
        Object.entries(message.attributes).map(([k, v]) => [
          k,
          { dataType: v.DataType, stringValue: v.StringValue, stringListValues: [], binaryListValues: [] },
        ]),
      ),
      md5OfBody: md5(message.body),
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:${queue.region}:000000000000:${queue.name}`,
      awsRegion: queue.region,
    };
    let failed: boolean;
    try {
      failed = (await queue.consumer({ Records: [record] })).includes(message.id);
    } catch {
      failed = true;
    }
    if (!failed) return;
    if (message.receiveCount >= queue.maxReceiveCount) {
      this.deadLetters.push({ queue: queue.name, id: message.id, body: message.body });
      queue.onDeadLetter?.({ id: message.id, body: message.body });
      return;
    }
    this.#schedule(queue, message, queue.retryDelayMs);
  }
}

function nonExistentQueue() {
  return { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID() });
  res.end(JSON.stringify(body));
}
