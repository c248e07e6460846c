import { InvalidArgumentError } from './errors.js';

// Topic and group names become directory names and level keys; `%` allows system names like %DLQ%g.
const NAME = /^[A-Za-z0-9_%-]{1,127}$/;

export function validateName(kind: 'topic' | 'group', name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidArgumentError(
      `invalid ${kind} name ${JSON.stringify(name)}: use 1-127 characters from A-Z a-z 0-9 _ - %`,
      { context: { [kind]: name } },
    );
  }
  return name;
}
