/** Types for bin/stack-map.mjs (the start scripts are plain JavaScript: they run before any loader). */
export declare class LineMap {
  constructor(mappings: string, sources: readonly string[]);
  lookup(line: number, column: number): { source: string; line: number; column: number } | undefined;
}
export declare function mapStackTraces(bundleUrl: string, map: LineMap): void;
