import { describe, expect, it } from 'vitest';
import {
  addYears,
  DEFAULT_POLICY,
  isPast,
  isReducedUserAgent,
  isTruncatedIp,
  learnerHolds,
  lmsEventsReleaseDay,
  lmsPseudonym,
  PolicyError,
  pseudonymFor,
  reducedTabData,
  reducedUserAgent,
  retentionPolicyFromEnv,
} from '../../src/privacy/rules.js';
import { ipPrefix } from '../../src/tracking/ticket.js';

const policy = DEFAULT_POLICY;

describe('the retention policy from the environment', () => {
  it('has the documented defaults', () => {
    expect(retentionPolicyFromEnv({})).toEqual({
      rawYears: 6,
      certificateYears: 6,
      euCofundedYears: 10,
      auditLogDays: 365,
      loginFailureDays: 90,
      onboardingDays: 365,
      userAgentDays: 30,
      batchSize: 500,
      contact: null,
    });
  });

  it('reads every variable and names the bad one', () => {
    const p = retentionPolicyFromEnv({
      PRIVACY_RAW_YEARS: '7',
      PRIVACY_CERTIFICATE_YEARS: '5',
      PRIVACY_EU_COFUNDED_YEARS: '12',
      PRIVACY_AUDIT_LOG_DAYS: '400',
      PRIVACY_LOGIN_FAILURE_DAYS: '30',
      PRIVACY_ONBOARDING_DAYS: '200',
      PRIVACY_USER_AGENT_DAYS: '15',
      PRIVACY_PURGE_BATCH: '100',
      PRIVACY_CONTACT: 'dpo@organisme.fr',
    });
    expect(p).toMatchObject({ rawYears: 7, certificateYears: 5, euCofundedYears: 12, contact: 'dpo@organisme.fr' });
    expect(() => retentionPolicyFromEnv({ PRIVACY_RAW_YEARS: 'six' })).toThrow(/PRIVACY_RAW_YEARS/);
    expect(() => retentionPolicyFromEnv({ PRIVACY_RAW_YEARS: '-1' })).toThrow(PolicyError);
    // Certificates are kept at least 3 years.
    expect(() => retentionPolicyFromEnv({ PRIVACY_CERTIFICATE_YEARS: '2' })).toThrow(/PRIVACY_CERTIFICATE_YEARS/);
    // EU co-funding can only lengthen retention.
    expect(() => retentionPolicyFromEnv({ PRIVACY_EU_COFUNDED_YEARS: '5' })).toThrow(/PRIVACY_EU_COFUNDED_YEARS/);
    expect(() => retentionPolicyFromEnv({ PRIVACY_CONTACT: 'not a contact' })).toThrow(/PRIVACY_CONTACT/);
    expect(retentionPolicyFromEnv({ PRIVACY_CONTACT: 'https://organisme.fr/rgpd' }).contact).toBe(
      'https://organisme.fr/rgpd',
    );
  });
});

describe('release dates', () => {
  it('adds calendar years, 29 February becoming 28 February', () => {
    expect(addYears('2026-03-31', 6)).toBe('2032-03-31');
    expect(addYears('2028-02-29', 1)).toBe('2029-02-28');
    expect(addYears('2032-01-01', -6)).toBe('2026-01-01');
  });

  it('keeps data through its release day', () => {
    expect(isPast('2032-03-31', new Date('2032-03-31T23:59:59Z'))).toBe(false);
    expect(isPast('2032-03-31', new Date('2032-04-01T00:00:00Z'))).toBe(true);
  });

  it('holds evidence 6 years after the session end, a certificate 6 after issue, both 10 when EU co-funded', () => {
    const { holds, releaseDay } = learnerHolds(
      {
        courses: [
          {
            courseId: 'c1',
            courseTitle: 'Cours 1',
            sessionEnd: '2026-06-30',
            lastActivity: new Date('2026-05-02T10:00:00Z'),
            euCofunded: false,
            hasEvidence: true,
          },
        ],
        certificates: [{ number: 'EMG-2026-000001-A', issuedAt: new Date('2026-07-03T10:00:00Z'), euCofunded: false }],
        hasProfile: true,
        lastLaunchAt: new Date('2026-05-02T10:00:00Z'),
        createdAt: new Date('2026-01-02T10:00:00Z'),
      },
      policy,
    );
    expect(holds.map((h) => [h.kind, h.releaseDay])).toEqual([
      ['evidence', '2032-06-30'],
      ['certificate', '2032-07-03'],
    ]);
    expect(releaseDay).toBe('2032-07-03');
    const eu = learnerHolds(
      {
        courses: [
          {
            courseId: 'c1',
            courseTitle: null,
            sessionEnd: null,
            lastActivity: new Date('2026-05-02T10:00:00Z'),
            euCofunded: true,
            hasEvidence: true,
          },
        ],
        certificates: [{ number: 'N', issuedAt: new Date('2026-07-03T10:00:00Z'), euCofunded: true }],
        hasProfile: true,
        lastLaunchAt: null,
        createdAt: new Date('2026-01-02T10:00:00Z'),
      },
      policy,
    );
    // Without a session end, the last activity stands for it.
    expect(eu.holds.map((h) => h.releaseDay)).toEqual(['2036-05-02', '2036-07-03']);
  });

  it('lets an unfinished onboarding go one year after the last launch', () => {
    const r = learnerHolds(
      {
        courses: [
          {
            courseId: 'c1',
            courseTitle: null,
            sessionEnd: '2026-06-30',
            lastActivity: new Date('2026-01-10T10:00:00Z'),
            euCofunded: false,
            hasEvidence: false,
          },
        ],
        certificates: [],
        hasProfile: false,
        lastLaunchAt: new Date('2026-01-10T10:00:00Z'),
        createdAt: new Date('2026-01-10T10:00:00Z'),
      },
      policy,
    );
    expect(r.holds).toHaveLength(1);
    expect(r.holds[0]?.kind).toBe('onboarding');
    expect(r.releaseDay).toBe('2027-01-10');
  });

  it('keeps a course’s LMS events until its last certificate is released', () => {
    const base = { sessionEnd: '2026-06-30', lastEventAt: new Date('2026-06-20T00:00:00Z'), euCofunded: false };
    expect(lmsEventsReleaseDay({ ...base, lastCertificateRelease: null }, policy)).toBe('2032-06-30');
    expect(lmsEventsReleaseDay({ ...base, lastCertificateRelease: '2032-09-01' }, policy)).toBe('2032-09-01');
    expect(lmsEventsReleaseDay({ ...base, euCofunded: true, lastCertificateRelease: null }, policy)).toBe('2036-06-30');
  });
});

describe('minimisation', () => {
  it('truncates IP addresses in evidence to /24 and /48', () => {
    for (const ip of ['203.0.113.77', '::ffff:198.51.100.9', '2001:db8:abcd:12:1::5', '2001:db8::1', 'fe80::1']) {
      const prefix = ipPrefix(ip);
      expect(isTruncatedIp(prefix), `${ip} → ${prefix}`).toBe(true);
    }
    expect(ipPrefix('203.0.113.77')).toBe('203.0.113.0/24');
    expect(ipPrefix('2001:db8:abcd:12:1::5')).toBe('2001:db8:abcd::/48');
    expect(isTruncatedIp('203.0.113.77')).toBe(false);
  });

  it('reduces a user agent to its device class, once', () => {
    const iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148';
    expect(reducedUserAgent(iphone)).toBe('device:mobile');
    expect(reducedUserAgent('Mozilla/5.0 (X11; Linux x86_64) Chrome/120')).toBe('device:desktop');
    expect(reducedUserAgent('Mozilla/5.0 (iPad; CPU OS 17_0)')).toBe('device:tablet');
    expect(reducedUserAgent('device:mobile')).toBe('device:mobile');
    expect(reducedUserAgent(null)).toBeNull();
    expect(isReducedUserAgent(iphone)).toBe(false);
    expect(isReducedUserAgent('device:tablet')).toBe(true);
  });

  it('reduces the personal fields of a tab record, and only those', () => {
    const data = { algorithm: 'beats-v1', role: 'learner', userAgent: 'Mozilla/5.0 (X11)', ipPrefix: '203.0.113.0/24' };
    expect(reducedTabData(data, 'user-agent-30d')).toEqual({ ...data, userAgent: 'device:desktop' });
    expect(reducedTabData(data, 'erasure')).toEqual({ ...data, userAgent: 'device:desktop', ipPrefix: null });
    expect(reducedTabData({ ...data, userAgent: 'device:desktop' }, 'user-agent-30d')).toBeNull();
    expect(reducedTabData({ ...data, userAgent: 'device:desktop', ipPrefix: null }, 'erasure')).toBeNull();
  });

  it('derives stable pseudonyms that reveal nothing', () => {
    const id = '1b4e28ba-2fa1-41d2-883f-0016d3cca427';
    expect(pseudonymFor(id)).toMatch(/^efface-[0-9a-f]{10}$/);
    expect(pseudonymFor(id)).toBe(pseudonymFor(id));
    expect(pseudonymFor(id)).not.toContain(id.slice(0, 8));
    expect(lmsPseudonym(id, 0)).toBe(pseudonymFor(id));
    expect(lmsPseudonym(id, 1)).toBe(`${pseudonymFor(id)}-2`);
  });
});
