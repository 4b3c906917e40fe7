/** See ./profiler.mjs. */
export declare function answerProfilerMessages(): void;
