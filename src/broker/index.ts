import { Broker } from './broker.js';
import type { BrokerOptions } from './options.js';

export type { BrokerOptions } from './options.js';
export type { Logger, LogLevel } from './logger.js';

export interface BrokerHandle {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Starts a broker in this process (for embedding and tests); resolves once it accepts connections. */
export async function startBroker(options: BrokerOptions): Promise<BrokerHandle> {
  const broker = await Broker.start(options);
  const { host, port } = broker.address;
  return { host, port, close: () => broker.close() };
}
