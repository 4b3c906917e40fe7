import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/**
 * The process-wide metrics every capability may count into. They live in one registry of this process,
 * created on first import; `/metrics` (./routes.ts) merges it with the per-app gauges read from the database.
 * Incrementing a counter is a few property look-ups: cheap enough for the heartbeat ingest and the launch.
 */
export const sharedRegistry = new Registry();

let defaultsOn = false;
/** Node's own figures (event-loop lag, heap, GC, CPU), collected once per process. */
export function enableProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: sharedRegistry, eventLoopMonitoringPrecision: 20 });
}

/** Seconds buckets for HTTP answers: 1 ms to 10 s. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const httpRequestDuration = new Histogram({
  name: 'emargement_http_request_duration_seconds',
  help: 'HTTP answer time, by route pattern (never the raw URL), method and status class',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: HTTP_BUCKETS,
  registers: [sharedRegistry],
});

export const ltiLaunches = new Counter({
  name: 'emargement_lti_launches_total',
  help: 'LTI logins and launches, by stage (login, launch), outcome (accepted, refused) and the failed check',
  labelNames: ['stage', 'outcome', 'reason'] as const,
  registers: [sharedRegistry],
});

export const beatsReceived = new Counter({
  name: 'emargement_beats_total',
  help: 'Tracker items answered by the heartbeat ingest, by status (received = acknowledged, duplicate, deferred)',
  labelNames: ['status'] as const,
  registers: [sharedRegistry],
});

export const beatsRejected = new Counter({
  name: 'emargement_beats_rejected_requests_total',
  help: 'Heartbeat requests refused as a whole, by error code (ticket_invalid, session_expired, tracking_busy, …)',
  labelNames: ['reason'] as const,
  registers: [sharedRegistry],
});

export const beatsCredited = new Counter({
  name: 'emargement_beats_credited_total',
  help: 'Inbox items consumed by crediting (credited, or kept as rejected evidence)',
  registers: [sharedRegistry],
});

export const lrsStatements = new Counter({
  name: 'emargement_lrs_statements_total',
  help: 'xAPI statements received from the LMS, by outcome (stored, duplicate, rejected)',
  labelNames: ['outcome'] as const,
  registers: [sharedRegistry],
});

export const certificatesIssued = new Counter({
  name: 'emargement_certificates_issued_total',
  help: 'Certificate versions issued by this process, by issuance kind',
  labelNames: ['kind'] as const,
  registers: [sharedRegistry],
});

export const exportDuration = new Histogram({
  name: 'emargement_export_duration_seconds',
  help: 'Time to stream one export, by kind (summary, connections, …) and format (csv, xlsx, zip)',
  labelNames: ['kind', 'format'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  registers: [sharedRegistry],
});

export const scoreDeliveries = new Counter({
  name: 'emargement_score_deliveries_total',
  help: 'AGS score deliveries attempted by this process, by outcome (sent, retry, failed)',
  labelNames: ['outcome'] as const,
  registers: [sharedRegistry],
});

/** Times an async piece of work into a histogram (labels fixed at the start). */
export async function timed<T>(
  histogram: Histogram<'kind' | 'format'>,
  labels: { kind: string; format: string },
  work: () => Promise<T>,
): Promise<T> {
  const end = histogram.startTimer(labels);
  try {
    return await work();
  } finally {
    end();
  }
}
