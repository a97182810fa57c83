import { loadConfig } from '../core/config.js';
import { startServer } from '../server.js';

/**
 * `fleetwire start`: runs until SIGTERM or SIGINT. SIGHUP re-reads the settings as the command read
 * them at start (the environment it was started with, and the config file again) and applies what
 * can change without a restart; a setting that does not read keeps everything as it is.
 */
export async function start(env: NodeJS.ProcessEnv): Promise<void> {
  // Node's default for SIGHUP ends the process without a word; here it reloads. One listener for
  // the process's whole life: a SIGHUP while starting is applied once started, and none is lost
  // (removing a signal's last listener drops a signal already caught but not yet handed to it).
  const hup: { reload?: () => void; whileStarting: boolean } = { whileStarting: false };
  process.on('SIGHUP', () => (hup.reload ? hup.reload() : (hup.whileStarting = true)));
  const server = await startServer(loadConfig(env));
  const log = server.platform.log;
  // A promise nobody handled is a bug in the path of one client or task (a refused frame, a
  // failed subscription). Node's default would end the process, and every device's connection
  // with it: it is logged with its stack instead, for someone to report.
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection (a bug: please report it with this line)'));
  // An exception nobody caught may have left any state half-changed: the process still ends
  // (Node's default), after a log line that says why.
  process.on('uncaughtExceptionMonitor', (err, origin) => log.fatal({ err, origin }, 'uncaught exception: the process ends'));
  const stop = (signal: string) => {
    log.info({ signal }, 'signal received');
    server.close().then(() => process.exit(0), (e) => {
      log.error({ err: e }, 'error while shutting down');
      process.exit(1);
    });
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  const reload = () => {
    log.info({ signal: 'SIGHUP' }, 'signal received: reloading the settings');
    let next;
    try {
      next = loadConfig(env);
    } catch (e) {
      log.error({ err: (e as Error).message }, 'reload: the settings do not read; nothing changed');
      return;
    }
    server.reload(next);
  };
  hup.reload = reload;
  if (hup.whileStarting) reload();
}
