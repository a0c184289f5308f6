/** One line naming the setting and what is wrong with it; `main` prints it and exits 1. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
