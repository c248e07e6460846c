import { Command } from 'commander';
import { startBroker } from '../broker/index.js';
import type { BrokerOptions } from '../broker/index.js';
import { formatEndpoint } from '../client/endpoint.js';
import { envVarOf, loadConfigFile, resolveBrokerConfig } from './broker-config.js';
import type { BrokerFlags } from './broker-config.js';
import type { CliIo } from './output.js';

interface BrokerCommandFlags extends BrokerFlags {
  config?: string;
}

/** `halfmq broker`: runs a broker in the foreground until SIGINT or SIGTERM. */
export function brokerCommand(io: CliIo): Command {
  return new Command('broker')
    .description('run a broker in the foreground; stop it with Ctrl-C (SIGINT) or SIGTERM')
    .option('--host <host>', `address to listen on (default 127.0.0.1; env ${envVarOf('host')})`)
    .option('--port <port>', `port to listen on, 0 for any free one (default 9876; env ${envVarOf('port')})`)
    .option('--data <dir>', `data directory (default ./data; env ${envVarOf('data')})`)
    .option('--flush <mode>', `sync: acknowledge sends after fsync (group commit); async: flush periodically (default sync; env ${envVarOf('flush')})`)
    .option('--config <file>', 'JSON config file with the same settings in camelCase, e.g. {"port": 9877, "flush": "async", "autoCreateTopics": false} (env HALFMQ_CONFIG)')
    .option('--auto-create-topics <bool>', `create a topic on its first send (default true; env ${envVarOf('autoCreateTopics')})`)
    .option('--default-queues <n>', `queues of an auto-created topic (default 4; env ${envVarOf('defaultQueues')})`)
    .option('--max-message-size <bytes>', `largest message body, e.g. 4194304 or 4MiB (default 4MiB; env ${envVarOf('maxMessageSize')})`)
    .option('--segment-size <bytes>', `commit-log segment file size, e.g. 1GiB (default 1GiB; env ${envVarOf('segmentSize')})`)
    .option('--preallocate <bytes>', `zero-filled commit-log space kept ahead of the data, so appends overwrite in place (cheaper fsync), paused while the log is written faster than 32 MiB/s; 0 turns it off (default 16MiB; env ${envVarOf('preallocate')})`)
    .option('--retry-delays <list>', `delays before each retry of a failed message, the last repeating, e.g. 1s,2s,5s (default RocketMQ's 10s,30s,1m,...,2h; env ${envVarOf('retryDelays')})`)
    .option('--tx-timeout-ms <ms>', `first check-back of a transaction still PREPARED this long after its half (default 6000; env ${envVarOf('txTimeoutMs')})`)
    .option('--tx-check-interval-ms <ms>', `then re-check every this long (default 30000; env ${envVarOf('txCheckIntervalMs')})`)
    .option('--heartbeat-timeout-ms <ms>', `a client silent this long is disconnected and its queues go to the others (default 30000; env ${envVarOf('heartbeatTimeoutMs')})`)
    .option('--tx-check-max <n>', `unanswered checks before a transaction is PARKED for an operator (default 15; env ${envVarOf('txCheckMax')})`)
    .addHelpText(
      'after',
      '\nPrecedence: flags > environment variables > config file > defaults.\n' +
        'Prints "halfmq broker listening on HOST:PORT" on stdout once it accepts connections; logs go to stderr.',
    )
    .action(async (flags: BrokerCommandFlags) => {
      const fileName = flags.config ?? (io.env.HALFMQ_CONFIG || undefined);
      const file = fileName !== undefined ? await loadConfigFile(fileName) : undefined;
      const { config, sources } = resolveBrokerConfig({ flags, env: io.env, ...(file ? { file, fileName } : {}) });
      const settings = Object.entries(config).map(([k, v]) => `${k}=${String(v)}`).join(' ');
      const nonDefault = Object.entries(sources).filter(([, s]) => s !== 'default').map(([k, s]) => `${k} from ${s}`);
      io.err(`info config ${settings}${nonDefault.length > 0 ? ` (${nonDefault.join(', ')})` : ''}`);
      const options: BrokerOptions = {
        host: config.host,
        port: config.port,
        dataDir: config.dataDir,
        flush: config.flush,
        autoCreateTopics: config.autoCreateTopics,
        defaultQueues: config.defaultQueues,
        log: (level, message, context) => {
          const ctx = context && Object.keys(context).length > 0 ? ` ${JSON.stringify(context)}` : '';
          io.err(`${level} ${message}${ctx}`);
        },
      };
      if (config.maxMessageSize !== undefined) options.maxMessageSize = config.maxMessageSize;
      if (config.segmentSize !== undefined) options.segmentSize = config.segmentSize;
      if (config.preallocateBytes !== undefined) options.preallocateBytes = config.preallocateBytes;
      if (config.retryDelays !== undefined) options.retryDelays = config.retryDelays;
      if (config.txTimeoutMs !== undefined) options.txTimeoutMs = config.txTimeoutMs;
      if (config.txCheckIntervalMs !== undefined) options.txCheckIntervalMs = config.txCheckIntervalMs;
      if (config.txCheckMax !== undefined) options.txCheckMax = config.txCheckMax;
      if (config.heartbeatTimeoutMs !== undefined) options.heartbeatTimeoutMs = config.heartbeatTimeoutMs;

      const broker = await startBroker(options);
      // Handlers first: whoever reads the "listening" line may signal at once, and a SIGINT that
      // beats the handler kills the process without a clean close.
      const signalled = nextSignal(() => {
        // A second Ctrl-C while closing means "now": the log's recovery handles the rest.
        io.err('halfmq: second signal, exiting without a clean close (INTERRUPTED)');
        process.exit(1);
      });
      io.out(`halfmq broker listening on ${formatEndpoint(broker.host, broker.port)}`);
      const signal = await signalled;
      io.err(`info received ${signal}, closing the broker`);
      await broker.close();
      io.err('info broker closed');
    });
}

/** Resolves on the first SIGINT/SIGTERM; later ones call `again`. */
function nextSignal(again: () => void): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (received) return again();
      received = true;
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
