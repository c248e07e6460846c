import { UnsupportedVersionError } from '../../common/errors.js';
import { BrokerFeature, PROTOCOL_VERSION } from '../../protocol/commands.js';
import type { HelloResponse } from '../../protocol/commands.js';
import type { Processor } from '../context.js';
import { BROKER_VERSION } from '../version.js';
import { asObject, optString, reqString } from '../validate.js';

/** HELLO {version, clientId, producerGroup?} → limits the client must respect. */
export const hello: Processor = (ctx, session, { payload }) => {
  const d = asObject(payload, 'HELLO payload');
  if (d.version !== PROTOCOL_VERSION) {
    throw new UnsupportedVersionError(`protocol version ${String(d.version)} is not supported; this broker speaks ${PROTOCOL_VERSION}`);
  }
  session.clientId = reqString(d, 'clientId');
  session.producerGroup = optString(d, 'producerGroup');
  const reply: HelloResponse = {
    version: PROTOCOL_VERSION,
    brokerVersion: BROKER_VERSION,
    maxMessageSize: ctx.options.maxMessageSize,
    maxFrameSize: ctx.options.maxFrameSize,
    heartbeatIntervalMs: Math.max(100, Math.floor(ctx.options.heartbeatTimeoutMs / 3)),
    features: Object.values(BrokerFeature),
  };
  return { payload: reply };
};

/** HEARTBEAT: receiving any frame refreshes the session; this one only exists to be received. */
export const heartbeat: Processor = () => ({ payload: {} });
