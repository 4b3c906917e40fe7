import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeComponent, FakeUser } from '../fixtures/openedx/index.js';
import { createLtiTestApp, type LtiTestContext } from './helpers.js';

/**
 * The login puts the registration in the process's cache and the launch validates against it; the nonce
 * consumption re-checks the registration in the database. A registration changed or removed between login
 * and launch must be judged by what the database says, never by the cached copy.
 */
let ctx: LtiTestContext;
let user: FakeUser;
let component: FakeComponent;

beforeAll(async () => {
  ctx = await createLtiTestApp();
  user = ctx.fake.createUser({ role: 'student' });
  component = ctx.fake.components[0] as FakeComponent;
  const ok = await ctx.fake.launch({ user, transport: ctx.transport });
  expect(ok.final.status).toBe(200);
});
afterAll(() => ctx.close());

async function loginAndAuthorize() {
  const step = await ctx.fake.startLogin({ user, transport: ctx.transport, component, cookies: 'drop' });
  if (!step.authRequest) throw new Error(`login refused: ${step.login.status}`);
  const auth = await ctx.fake.authorize(step.authRequest);
  if (!auth.ok) throw new Error(auth.error);
  return auth.fields;
}

function post(fields: Record<string, string>) {
  return ctx.transport.request({ method: 'POST', url: `${ctx.config.publicUrl}/lti/launch`, form: fields });
}

const registration = () => ctx.app.db.selectFrom('lti_registrations').where('client_id', '=', component.clientId);

describe('registration cache', () => {
  it('refuses a launch whose deployment was removed from the registration after login (deployment_id)', async () => {
    const fields = await loginAndAuthorize();
    await ctx.app.db
      .updateTable('lti_registrations')
      .set({ deployment_ids: JSON.stringify(['another']) })
      .where('client_id', '=', component.clientId)
      .execute();
    try {
      const res = await post(fields);
      expect(res.status).toBe(400);
      expect(ctx.lastRefusal()).toMatchObject({ stage: 'launch', check: 'deployment_id' });
    } finally {
      await ctx.app.db
        .updateTable('lti_registrations')
        .set({ deployment_ids: JSON.stringify(['1']) })
        .where('client_id', '=', component.clientId)
        .execute();
    }
  });

  it('refuses a launch whose registration was removed after login, then accepts once it is back', async () => {
    const fields = await loginAndAuthorize();
    await ctx.app.db
      .updateTable('lti_registrations')
      .set({ removed_at: new Date() })
      .where('client_id', '=', component.clientId)
      .execute();
    const res = await post(fields);
    expect(res.status).toBe(400);
    expect(ctx.lastRefusal()).toMatchObject({ stage: 'launch', check: 'registration' });
    // Nothing was burnt by the refused launch: the nonce is still usable once the registration is back.
    await ctx.app.db
      .updateTable('lti_registrations')
      .set({ removed_at: null })
      .where('client_id', '=', component.clientId)
      .execute();
    expect((await post(fields)).status).toBe(200);
    expect((await post(fields)).status).toBe(401);
    expect(ctx.lastRefusal()).toMatchObject({ stage: 'launch', check: 'nonce_unused' });
  });

  it('refuses the login of a removed registration at once (the login reads the database)', async () => {
    await ctx.app.db
      .updateTable('lti_registrations')
      .set({ removed_at: new Date() })
      .where('client_id', '=', component.clientId)
      .execute();
    try {
      const step = await ctx.fake.startLogin({ user, transport: ctx.transport, component, cookies: 'drop' });
      expect(step.authRequest).toBeFalsy();
      expect(ctx.lastRefusal()).toMatchObject({ stage: 'login', check: 'registration' });
    } finally {
      await ctx.app.db
        .updateTable('lti_registrations')
        .set({ removed_at: null })
        .where('client_id', '=', component.clientId)
        .execute();
    }
    expect((await registration().select('id').executeTakeFirst())?.id).toBeTruthy();
  });
});
