import { IllegalStateError } from '../../common/errors.js';
import type { BenchResult, ScenarioContext } from './scenarios.js';

/** Broker flags for the check scenario (a short check interval). */
export const CHECK_BROKER_ARGS: string[] = [];

export async function txScenario(_ctx: ScenarioContext): Promise<BenchResult> {
  throw new IllegalStateError('tx: transactions are not available yet');
}

export async function checkScenario(_ctx: ScenarioContext): Promise<BenchResult> {
  throw new IllegalStateError('check: transactions are not available yet');
}
