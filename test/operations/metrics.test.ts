import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CatalogTestContext, createCatalogTestApp } from '../catalog/helpers.js';
import { createTestApp } from '../helpers/app.js';
import { parsePrometheusText, sampleValue } from '../helpers/prometheus.js';

const TOKEN = 'metrics-token-0123456789abcdef';

describe('/metrics without METRICS_TOKEN', () => {
  it('does not exist (404), so an instance without a token exposes nothing', async () => {
    const ctx = await createTestApp();
    try {
      const res = await ctx.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(404);
      const withHeader = await ctx.app.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(withHeader.statusCode).toBe(404);
    } finally {
      await ctx.close();
    }
  });

  it('refuses a token shorter than 16 characters at start', async () => {
    await expect(createTestApp({ env: { METRICS_TOKEN: 'short' } })).rejects.toThrow(/METRICS_TOKEN/);
  });
});

describe('/metrics with METRICS_TOKEN', () => {
  let ctx: CatalogTestContext;
  beforeAll(async () => {
    ctx = await createCatalogTestApp({
      env: { METRICS_TOKEN: TOKEN },
      components: [{ custom: { theme: 'visibilite' } }],
    });
  });
  afterAll(async () => ctx?.close());

  const scrape = async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    return parsePrometheusText(res.body);
  };

  it('refuses a missing or wrong bearer token with 401', async () => {
    const none = await ctx.app.inject({ method: 'GET', url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expect(none.body).not.toContain('emargement_');
    const wrong = await ctx.app.inject({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}x` },
    });
    expect(wrong.statusCode).toBe(401);
    const basic = await ctx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: TOKEN } });
    expect(basic.statusCode).toBe(401);
  });

  it('is valid Prometheus text with every family the runbooks name', async () => {
    const families = await scrape();
    for (const name of [
      'emargement_http_request_duration_seconds',
      'emargement_lti_launches_total',
      'emargement_beats_total',
      'emargement_beats_rejected_requests_total',
      'emargement_beats_credited_total',
      'emargement_lrs_statements_total',
      'emargement_certificates_issued_total',
      'emargement_export_duration_seconds',
      'emargement_score_deliveries_total',
      'emargement_score_outbox_depth',
      'emargement_crediting_lag_seconds',
      'emargement_crediting_backlog_items',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(families.has(name), name).toBe(true);
    }
    expect(families.get('emargement_http_request_duration_seconds')?.type).toBe('histogram');
    expect(families.get('emargement_score_outbox_depth')?.type).toBe('gauge');
    expect(sampleValue(families, 'emargement_score_outbox_depth', { status: 'failed' })).toBe(0);
    expect(sampleValue(families, 'emargement_crediting_lag_seconds')).toBe(0);
    // The pool's use exists on PostgreSQL only (PGlite has one connection and no pool).
    if (ctx.app.dbKind === 'pg') {
      expect(sampleValue(families, 'emargement_db_pool_connections', { state: 'max' })).toBeGreaterThan(0);
    } else {
      expect(families.has('emargement_db_pool_connections')).toBe(false);
    }
  });

  it('counts launches by outcome, refused beats by reason, and times routes by pattern, not raw URL', async () => {
    const before = await scrape();
    const accepted = (f: typeof before) =>
      sampleValue(f, 'emargement_lti_launches_total', { stage: 'launch', outcome: 'accepted' }) ?? 0;
    const user = ctx.fake.createUser();
    await ctx.launch(user);
    const refusedLaunch = await ctx.app.inject({
      method: 'POST',
      url: '/lti/launch',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'id_token=not.a.jwt&state=nothing',
    });
    expect(refusedLaunch.statusCode).toBeGreaterThanOrEqual(400);
    const beats = await ctx.app.inject({
      method: 'POST',
      url: '/api/tracking/beats',
      payload: { ticket: 'forged', tabId: '0123456789abcdef0123456789abcdef', items: [] },
    });
    expect(beats.statusCode).toBe(400);
    await ctx.app.inject({ method: 'GET', url: '/verify/EMG-2026-000123' });

    const after = await scrape();
    expect(accepted(after)).toBe(accepted(before) + 1);
    const refused = after
      .get('emargement_lti_launches_total')
      ?.samples.filter((s) => s.labels.stage === 'launch' && s.labels.outcome === 'refused')
      .reduce((a, s) => a + s.value, 0);
    expect(refused).toBeGreaterThanOrEqual(1);
    const beatsReason = after.get('emargement_beats_rejected_requests_total')?.samples.map((s) => s.labels.reason);
    expect(beatsReason?.length).toBeGreaterThan(0);
    const routes = new Set(
      after.get('emargement_http_request_duration_seconds')?.samples.map((s) => s.labels.route) ?? [],
    );
    expect(routes.has('/verify/:number')).toBe(true);
    expect(routes.has('/lti/launch')).toBe(true);
    expect([...routes].some((r) => r?.includes('EMG-2026'))).toBe(false);
  });
});
