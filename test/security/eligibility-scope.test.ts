import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedCourse } from '../certificates/helpers.js';
import { createTestApp, type TestContext } from '../helpers/app.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestApp();
});
afterAll(() => ctx.close());

describe('eligibility is answered only for learners of the caller’s course', () => {
  it('an instructor of course Y asking about a learner of course X gets 404; of their own course, 200', async () => {
    const x = await seedCourse(ctx.app, { people: [{ role: 'learner' }] });
    const y = await seedCourse(ctx.app, { people: [{ role: 'course_team' }, { role: 'learner' }] });
    const [learnerX] = x.people;
    const [teacherY, learnerY] = y.people;
    const ask = (token: string, learnerId: string) =>
      ctx.app.inject({
        method: 'GET',
        url: `/api/certificates/eligibility/${learnerId}`,
        headers: { authorization: `Bearer ${token}` },
      });
    const other = await ask(teacherY!.token, learnerX!.id);
    expect(other.statusCode).toBe(404);
    expect(other.json()).toMatchObject({ status: 404 });
    const unknown = await ask(teacherY!.token, '00000000-0000-4000-8000-000000000000');
    expect(unknown.statusCode).toBe(404);
    const own = await ask(teacherY!.token, learnerY!.id);
    expect(own.statusCode).toBe(200);
    const self = await ask(learnerY!.token, learnerY!.id);
    expect(self.statusCode).toBe(200);
  });
});
